import { BerthError } from '../domain/errors.ts'

/** The desired state stopped being `running` while a deploy was applied; the deploy was abandoned. */
export class DeployCancelledError extends BerthError {
  constructor(desired: string) {
    super('conflict', `deploy cancelled: the deployment is now meant to be ${desired}`)
    this.name = 'DeployCancelledError'
  }
}
