import { activityChart, activitySummary, niceMax } from '../../views/activity'
import { RecentActivity } from '../../src/metrics/recent'
import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { escapeHtml, html, raw } from '../../views/html'
import { duration } from '../../views/format'
import { emptyForm, instanceForm, type FormView } from '../../views/instance-form'
import { formChoices } from '../../src/http/page-form'
import { type InstanceItem, instanceList, instancesPage } from '../../views/instances'
import { keyList } from '../../views/keys'
import { layout, loginPage } from '../../views/layout'
import { logsPage } from '../../views/logs'
import { llamaServerInfo } from '../../views/system'

const ctx = { csrf: 'tok', canSignOut: true }

/** The markup around a value: the output with every place the value went blanked. */
function skeleton(out: string, value: string): string {
  return out.split(escapeHtml(value)).join('§')
}

/** Every view that shows something a user, a backend or a key's creator wrote. */
function renderAll(s: string): string[] {
  const item: InstanceItem = {
    name: s,
    status: 'failed',
    backend: s,
    port: 8001,
    readySince: null,
    lastRequest: null,
    restarts: 1,
    error: s,
    lastLines: [s, `x${s}`],
    activity: s,
  }
  const state = { ...emptyForm(), name: s, common: { model: s, ctx_size: s }, advanced: [[s, s]] as [string, string][], environment: [[s, s]] as [string, string][], command: s, max_restarts: s }
  const form: FormView = {
    mode: 'create',
    state,
    errors: { model: s, advanced: s, form: s },
    defaults: { auto_restart: true, max_restarts: 3, restart_delay: 5, on_demand_start: true, idle_timeout: 0 },
    knownOptions: [s],
    ...formChoices('llama_cpp'),
    csrf: 'tok',
  }
  return [
    instancesPage(ctx, [item], 1000, { kind: 'error', message: s }).value,
    instanceForm(form).value,
    logsPage(ctx, { name: s, status: 'running', lines: [s, s], cursor: 3, file: s, activity: new RecentActivity().series(s) }).value,
    keyList({ keys: [{ id: 1, name: s, created_at: 0, expires_at: null, instances: [s] }], instanceNames: [s], created: { name: s, secret: s }, error: s, csrf: 'tok', now: 0 }).value,
    llamaServerInfo({ ok: true, text: s }, { ok: false, error: s }).value,
  ]
}

describe('the html template', () => {
  test('escapes every interpolation unless it is markup made by html or raw', () => {
    const evil = `<script>alert("x")</script>&'`
    expect(html`<p title="${evil}">${evil}</p>`.value).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</p>',
    )
    expect(html`<div>${html`<b>${evil}</b>`}</div>`.value).toBe('<div><b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</b></div>')
    expect(html`${raw('<hr>')}`.value).toBe('<hr>')
    expect(html`${[1, '<', html`<i></i>`]}${null}${undefined}${false}${0}`.value).toBe('1&lt;<i></i>0')
  })

  test('a value never changes the markup around it, in any view (names, log lines, errors, key names)', () => {
    const reference = renderAll('plain').map((out) => skeleton(out, 'plain'))
    fc.assert(
      fc.property(fc.string({ unit: fc.oneof(fc.constantFrom('<', '>', '"', "'", '&', '=', '/', ' ', '\n'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), minLength: 1, maxLength: 40 }), (s) => {
        fc.pre(!/^[a-z]*$/.test(s)) // a bare word could also occur in the template itself
        const outs = renderAll(s)
        outs.forEach((out, i) => {
          // No markup character of the value survives unescaped...
          const marks = (x: string) => (x.match(/[<>"']/g) ?? []).length
          expect(marks(skeleton(out, s))).toBe(marks(reference[i]!))
        })
      }),
      { numRuns: 300 },
    )
  })

  test('the usual attacks come out as text', () => {
    const attacks = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' onmouseover='alert(1)", '</pre><script>x</script>', '&lt;b&gt;']
    for (const a of attacks) {
      for (const out of renderAll(a)) {
        expect(out).not.toContain(a)
        expect(out).toContain(escapeHtml(a))
      }
    }
  })
})

describe('activity', () => {
  test('ten minutes in 10-second buckets: requests, errors (5xx and lost), tokens, and the generation speed the backend measured', () => {
    const r = new RecentActivity()
    const t = 1_000_000_000
    r.record('m', 200, 50, 800, t)
    r.record('m', 200, 30, 1000, t + 1000)
    r.record('m', 502, 0, undefined, t + 2000)
    r.record('m', 200, 100, undefined, t - 30_000) // a backend that gave no speed
    r.record('m', 200, 999, 5, t - 700_000) // older than ten minutes: gone
    const s = r.series('m', t + 5000)
    expect(s.requests).toHaveLength(60)
    expect(s.requests.at(-1)).toBe(3)
    expect(s.errors.at(-1)).toBe(1)
    expect(s.tokens.at(-1)).toBe(80)
    // The speed is the backend's tokens/s, averaged over the requests that said it: not tokens over the bucket's 10 s.
    expect(s.speed.at(-1)).toBe(900)
    expect(s.speed.at(-4)).toBeNull()
    expect(s.requests.reduce((a, b) => a + b, 0)).toBe(4)
    expect(activitySummary(s)).toBe('4 requests · 1 error · 180 tokens')
    const chart = activityChart('m', s).value
    expect(chart).toContain('generation 900–900 tokens/s as the backend measured it')
    // axes: requests (0 to a round maximum) on the left, tokens/s on the right, time below
    expect(chart).toContain('text-anchor="end">5</text>')
    expect(chart).toContain('text-anchor="start">1000</text>')
    expect(chart).toContain('>tok/s</text>')
    expect(chart).toContain('>−10 min</text>')
    expect(chart).toContain('>now</text>')
  })

  test('the chart holds only numbers and polls itself; with no requests it says so', () => {
    const r = new RecentActivity()
    r.record('<img src=x>', 200, 10)
    const out = activityChart('<img src=x>', r.series('<img src=x>')).value
    expect(out).toContain('<svg class="chart"')
    expect(out).not.toContain('<img')
    expect(out).toContain('hx-get="/ui/instances/%3Cimg%20src%3Dx%3E/activity"')
    const empty = activityChart('quiet', r.series('quiet')).value
    expect(empty).toContain('No requests yet in the last 10 minutes.')
    expect(empty).not.toContain('<svg')
    expect(empty).toContain('hx-trigger="every 10s"')
  })

  test('axis maxima are round', () => {
    expect([0, 1, 3, 7, 12, 99, 101, 850, 1234].map(niceMax)).toEqual([1, 1, 5, 10, 20, 100, 200, 1000, 2000])
  })
})

describe('views', () => {
  test('the list shows status, queued requests, model, backend, group, port, uptime, last request, and why a failed instance failed; every row has the same buttons', () => {
    const now = 10_000_000
    const out = instanceList(
      [
        { name: 'a', status: 'running', backend: 'llama_cpp', model: 'qwen2.5-7b-instruct-q4_k_m.gguf', group: 'large', queued: 3, port: 8001, readySince: now - 125_000, lastRequest: now - 3000, restarts: 0, error: null, lastLines: [], activity: '3 requests · 0 errors · 42 tokens' },
        { name: 'b', status: 'failed', backend: 'vllm', port: null, readySince: null, lastRequest: null, restarts: 3, error: 'exited while loading (exit code 1)', lastLines: ['error: bad tensor'], activity: '0 requests · 0 errors · 0 tokens' },
      ],
      now,
    ).value
    expect(out).toContain('hx-trigger="every 2s"')
    expect(out).toContain('2 min 5 s')
    expect(out).toContain('3 s ago')
    expect(out).toContain('3 requests · 0 errors · 42 tokens')
    expect(out).toContain('<td data-label="Group">large</td>')
    expect(out).toContain('<td data-label="Model" class="model"><span title="qwen2.5-7b-instruct-q4_k_m.gguf">qwen2.5-7b-instruct-q4_k_m.gguf</span></td>')
    expect(out).toContain('3 queued')
    expect(out).toContain('<td data-label="Group">—</td>') // b has none
    // With no group anywhere, no group column.
    expect(instanceList([{ name: 'c', status: 'stopped', backend: 'llama_cpp', port: null, readySince: null, lastRequest: null, restarts: 0, error: null, lastLines: [], activity: '' }], now).value).not.toContain('Group')
    expect(out).toContain('never')
    expect(out).toContain('exited while loading (exit code 1)')
    expect(out).toContain('error: bad tensor')
    // The same three buttons in every row, those that do not apply disabled: nothing moves as a status changes.
    for (const n of ['a', 'b']) for (const op of ['start', 'stop', 'restart']) expect(out).toContain(`id="${op}-${n}"`)
    expect(out).toMatch(/id="stop-a"[^>]*hx-sync="#instances:replace">/)
    expect(out).toMatch(/id="start-a"[^>]*disabled>/)
    expect(out).toMatch(/id="start-b"[^>]*hx-sync="#instances:replace">/)
    expect(out).toMatch(/id="stop-b"[^>]*disabled>/)
    expect(out).toContain('hx-confirm="Delete the instance b?')
  })

  test('pages carry the CSRF token for htmx and load only their own files', () => {
    const out = layout({ csrf: 'abc', canSignOut: true }, { title: 't', section: 'keys', body: html`x` }).value
    expect(out).toContain('<meta name="csrf-token" content="abc">')
    expect(out).toContain('hx-headers="{&quot;X-CSRF-Token&quot;:&quot;abc&quot;}"')
    expect(out).toContain('<a href="/ui/keys" aria-current="page">')
    for (const [, url] of out.matchAll(/(?:src|href)="([^"]+)"/g)) expect(url!.startsWith('/') || url!.startsWith('#')).toBe(true)
    expect(out).not.toMatch(/<script>|style="/)
    expect(loginPage({ error: true }).value).toContain('role="alert"')
  })

  test('the form keeps what was typed and puts the message next to its field', () => {
    const state = { ...emptyForm(), name: 'x', common: { model: '/m.gguf', ctx_size: 'abc' } }
    const out = instanceForm({
      mode: 'create',
      state,
      errors: { ctx_size: 'backend_options.ctx_size: llama-server expects a whole number, got "abc"' },
      defaults: { auto_restart: true, max_restarts: 3, restart_delay: 5, on_demand_start: true, idle_timeout: 0 },
      knownOptions: ['threads'],
      ...formChoices('llama_cpp'),
      csrf: 't',
    }).value
    expect(out).toContain('value="/m.gguf"')
    expect(out).toMatch(/name="ctx_size" value="abc"[^>]*aria-invalid="true" aria-describedby="err-ctx_size" autofocus>\s*<p class="field-error" id="err-ctx_size">backend_options.ctx_size: llama-server expects a whole number, got &quot;abc&quot;<\/p>/)
    expect(out).toContain('Default (yes)')
  })

  test('durations', () => {
    expect(duration(0)).toBe('0 s')
    expect(duration(59_000)).toBe('59 s')
    expect(duration(3_600_000 + 5000)).toBe('1 h')
    expect(duration(90_061_000)).toBe('1 d 1 h')
  })
})
