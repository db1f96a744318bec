// Text from outside as PostgreSQL (and canonical JSON) can hold it.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** The text with each lone surrogate (half a UTF-16 pair, which neither can hold) as U+FFFD. */
export const withoutLoneSurrogates = (text: string): string => text.replace(LONE_SURROGATE, '\uFFFD')
