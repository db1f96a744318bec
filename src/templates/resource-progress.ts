import type { ProgressStage } from '../domain/lifecycle.ts'

// The six stages people expect from one-click resources, over berth's own. A template deployment
// shows both: berth's stage (what is happening) and this one (how far along, in their words).

export const resourceStages = [
  'initialising',
  'allocating',
  'configuring',
  'provisioning',
  'verifying',
  'complete',
] as const
export type ResourceStage = (typeof resourceStages)[number]

const PERCENT: Record<ResourceStage, number> = {
  initialising: 0,
  allocating: 20,
  configuring: 40,
  provisioning: 60,
  verifying: 80,
  complete: 100,
}

const FROM_BERTH: Record<ProgressStage, ResourceStage> = {
  queued: 'initialising',
  scheduling: 'allocating',
  pulling: 'configuring',
  creating: 'provisioning',
  starting: 'provisioning',
  'health-checking': 'verifying',
  running: 'complete',
}

export function resourceProgressOf(stage: ProgressStage): { stage: ResourceStage; percent: number } {
  const resource = FROM_BERTH[stage]
  return { stage: resource, percent: PERCENT[resource] }
}
