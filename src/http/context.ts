import type { Principal } from '../identity/principal.ts'

export interface AppEnv {
  Variables: {
    requestId: string
    principal: Principal
  }
}
