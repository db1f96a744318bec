// A self-contained API reference rendered from the OpenAPI document: berth runs where no CDN can be
// reached, so /docs cannot lean on an external UI bundle.

interface Operation {
  summary?: string
  tags?: string[]
}

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!,
  )

export function renderDocsPage(doc: {
  info: { title: string; version: string }
  paths?: Record<string, unknown>
}) {
  const rows: string[] = []
  for (const [path, methods] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(methods as Record<string, Operation>)) {
      rows.push(
        `<tr><td class="m ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</td><td><code>${escapeHtml(path)}</code></td><td>${escapeHtml(op.summary ?? '')}</td></tr>`,
      )
    }
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)} API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}td{padding:.3rem .8rem;border-bottom:1px solid #ddd}
.m{font-weight:600}.get{color:#1565c0}.post{color:#2e7d32}.delete{color:#c62828}</style></head><body>
<h1>${escapeHtml(doc.info.title)} API <small>${escapeHtml(doc.info.version)}</small></h1>
<p>The machine-readable document is at <a href="/openapi.json">/openapi.json</a>. Send <code>Authorization: Bearer &lt;token&gt;</code> on every <code>/v1</code> route.</p>
<table>${rows.join('\n')}</table></body></html>`
}
