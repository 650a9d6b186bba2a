// Drives `crucible serve` with the official openai npm client (installed by
// .ci/run; CRUCIBLE_NPM names its node_modules). Usage:
//   node openai_client.mjs BASE_URL API_KEY MODEL HIDDEN_SIZE
// Prints one line per check; exits 1 on the first failure.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.join(process.env.CRUCIBLE_NPM, 'x.js'));
const { OpenAI } = require('openai');
const [base, key, model, hidden] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0 });

function check(ok, what, detail) {
  if (!ok) {
    console.log(`FAIL ${what}: ${JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok ${what}`);
}

const msgs = [{ role: 'user', content: 'What is 2+3?' }];

const models = await client.models.list();
check(models.data.length === 1 && models.data[0].id === model, 'models.list', models.data);

const chat = await client.chat.completions.create({ model, messages: msgs, max_tokens: 8, temperature: 0 });
check(typeof chat.choices[0].message.content === 'string' && chat.usage.completion_tokens > 0 &&
  ['stop', 'length'].includes(chat.choices[0].finish_reason), 'chat', chat);

const cmpl = await client.completions.create({ model, prompt: 'If Tom has', max_tokens: 5, temperature: 0.7, seed: 3 });
check(typeof cmpl.choices[0].text === 'string' && cmpl.usage.prompt_tokens > 0, 'completions', cmpl);

const stream = await client.chat.completions.create({ model, messages: msgs, max_tokens: 8, temperature: 0,
  stream: true, stream_options: { include_usage: true } });
let text = '', usage = null, finish = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta?.content ?? '';
    finish = c.finish_reason ?? finish;
  }
}
check(text === chat.choices[0].message.content && usage && usage.completion_tokens === chat.usage.completion_tokens && finish,
  'streaming with usage (same text as without)', { text, usage, finish });

const many = await client.chat.completions.create({ model, messages: msgs, max_tokens: 6, temperature: 1, n: 4, seed: 1 });
check(many.choices.length === 4 && many.choices.every((c, i) => c.index === i), 'n > 1', many.choices.length);

const lp = await client.chat.completions.create({ model, messages: msgs, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2 });
const content = lp.choices[0].logprobs?.content ?? [];
check(content.length === lp.usage.completion_tokens && content.every(e => e.logprob <= 0 && e.top_logprobs.length === 2),
  'chat logprobs', lp.choices[0].logprobs);

const echo = await client.completions.create({ model, prompt: 'If Tom has 3 apples', max_tokens: 0, echo: true, logprobs: 1 });
const el = echo.choices[0].logprobs;
check(echo.choices[0].text === 'If Tom has 3 apples' && el.tokens.length === el.token_logprobs.length &&
  el.token_logprobs[0] === null && el.token_logprobs.slice(1).every(x => x <= 0), 'echo with prompt logprobs', el);

const emb = await client.embeddings.create({ model, input: ['one apple', 'two pears'] }); // base64 by default
const v = emb.data[0].embedding;
const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
check(emb.data.length === 2 && v.length === Number(hidden) && Math.abs(norm - 1) < 1e-4, 'embeddings', { n: emb.data.length, dim: v.length, norm });
const embF = await client.embeddings.create({ model, input: 'one apple', encoding_format: 'float' });
check(embF.data[0].embedding.every((x, i) => Math.abs(x - v[i]) < 1e-6), 'embeddings as floats equal base64', null);

try {
  await new OpenAI({ baseURL: base, apiKey: 'wrong', maxRetries: 0 }).chat.completions.create({ model, messages: msgs, max_tokens: 2 });
  check(false, 'wrong key', 'accepted');
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.status === 401, 'wrong key -> 401', String(e));
}

try {
  await client.chat.completions.create({ model, messages: msgs, tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] });
  check(false, 'tools', 'accepted');
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400, 'tools -> 400', String(e));
}
console.log('all ok');
