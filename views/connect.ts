/**
 * How to reach llamactl's OpenAI-compatible address: the base URL and copyable curl and
 * OpenAI-client snippets with an instance's name. The address is the one the browser used
 * (page.js puts location.origin in place of `origin`, llamactl's own guess from its config).
 */
import { html, type Html } from './html'

const q = (s: string) => JSON.stringify(s)

export function connectCard(model: string | null, authOn: boolean, origin: string): Html {
  const name = model ?? 'INSTANCE-NAME'
  const key = authOn ? ' -H "Authorization: Bearer $LLAMACTL_KEY"' : ''
  const curl = `curl ${origin}/v1/chat/completions${key} \\\n  -H "Content-Type: application/json" \\\n  -d '{"model": ${q(name)}, "messages": [{"role": "user", "content": "Hello!"}]}'`
  const js = `import OpenAI from 'openai'\nconst client = new OpenAI({ baseURL: '${origin}/v1', apiKey: process.env.LLAMACTL_KEY${authOn ? '' : " ?? 'none'"} })\nconst reply = await client.chat.completions.create({ model: ${q(name)}, messages: [{ role: 'user', content: 'Hello!' }] })\nconsole.log(reply.choices[0].message.content)`
  const py = `from openai import OpenAI\nimport os\nclient = OpenAI(base_url="${origin}/v1", api_key=os.environ${authOn ? '["LLAMACTL_KEY"]' : '.get("LLAMACTL_KEY", "none")'})\nreply = client.chat.completions.create(model=${q(name)}, messages=[{"role": "user", "content": "Hello!"}])\nprint(reply.choices[0].message.content)`
  const block = (id: string, label: string, text: string) => html`<div class="snippet">
    <div class="snippet-head"><span class="small muted">${label}</span><button type="button" class="small" data-copy="${id}">Copy</button></div>
    <pre class="out" id="${id}" data-origin-template="${origin}">${text}</pre>
  </div>`
  return html`<section id="connect" class="card" aria-labelledby="connect-title">
  <h2 id="connect-title">Connect</h2>
  <p>Any OpenAI client: base URL <code data-origin-template="${origin}">${origin}/v1</code>, ${model ? html`model <code>${model}</code>` : 'the instance\'s name (or an alias) as the model'}${authOn ? html`, and an inference key (<a href="/ui/keys">make one</a>) or a management key as its API key, here <code>$LLAMACTL_KEY</code>` : ''}.</p>
  ${block('connect-curl', 'curl', curl)}
  ${block('connect-js', 'Node (npm install openai), as a .mjs file', js)}
  ${block('connect-py', 'Python (pip install openai)', py)}
</section>`
}
