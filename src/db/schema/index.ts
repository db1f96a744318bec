export * from './accounts.ts'
export * from './deployments.ts'
export * from './ports.ts'
export * from './settings.ts'
