import type Docker from 'dockerode'
import { execInContainer } from '../../src/providers/docker/exec.ts'

/** Runs a command in a container through the API; returns its exit code and output. */
export const exec = (container: Docker.Container, cmd: string[]) => execInContainer(container, cmd)
