// The libp2p stack targets Node 22 and calls Promise.withResolvers, which Node 20 (the test hosts'
// /usr/bin/node, copied into the image) lacks. Imported first, so it is in place before any of them.
Promise.withResolvers ??= function withResolvers() {
  let resolve
  let reject
  const promise = new this((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}
