export * from './accounts.ts'
export * from './deployments.ts'
export * from './settings.ts'
