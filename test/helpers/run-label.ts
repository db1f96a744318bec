import type { Provider } from '../../src/providers/provider.ts'

/**
 * The provider, with every deployment it applies carrying the spec label `key=value` (on the
 * engine `user.<key>`), so a test run can find and remove what it created by that label.
 */
export function labelEveryApply(provider: Provider, key: string, value: string): Provider {
  return {
    ...provider,
    apply: (target, ctx) =>
      provider.apply(
        { ...target, spec: { ...target.spec, labels: { ...target.spec.labels, [key]: value } } },
        ctx,
      ),
  }
}
