// Telling what kind of reference a caller gave where several are accepted (an organisation by id
// or slug; an owner by id, wallet address or slug).

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const ADDRESS = /^0x[0-9a-f]{40}$/i

export const isUuid = (text: string): boolean => UUID.test(text)
export const isWalletAddress = (text: string): boolean => ADDRESS.test(text)
