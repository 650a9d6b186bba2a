// Reference encodings from Hugging Face's JS tokenizers for the fixtures in
// testdata/ and the real tokenizers in ../shared/fixtures/real.
//
// Rerun (needs network for npm only; the tokenizers load offline):
//
//   mkdir -p /tmp/tokjs && cd /tmp/tokjs && npm init -y && npm install @huggingface/tokenizers@0.2.0
//   cd engine/tokenizer/testdata/gen && NODE_PATH=/tmp/tokjs/node_modules node refs.mjs ../../../../../shared/fixtures/real
//
// It writes testdata/<fixture>/cases.json and testdata/golden/<real>.json:
// {"reference", "tokenizer", "encode": [{"text", "ids", "decoded",
// "add_special_tokens"}]}. decoded is decode(ids) without
// clean_up_tokenization_spaces (the Rust tokenizers library has none).
//
// Where the JS port differs from the Rust crate (huggingface/tokenizers,
// which transformers runs), rustify patches it to the Rust semantics:
//   - Digits splits on char::is_numeric (Unicode N: ², ½, ٣), not JS's \d;
//   - the Metaspace decoder drops every replacement character of the first
//     token unless prepend_scheme is "never" (JS strips one leading space).
// JS also ignores single_word, continuing_subword_prefix and Metaspace's
// split; those are covered by hand-written tests in the Go package.
import fs from "node:fs";
import path from "node:path";

const pkgDir = path.join(process.env.NODE_PATH ?? "/tmp/tokjs/node_modules", "@huggingface", "tokenizers");
const { Tokenizer } = await import(path.join(pkgDir, "dist", "tokenizers.mjs"));
const version = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8")).version;

const real = process.argv[2] ?? "../../../../../shared/fixtures/real";
const here = path.dirname(new URL(import.meta.url).pathname);
const testdata = path.join(here, "..");

const texts = [
  // math and LaTeX
  "What is 2+3? The answer is 5.",
  "Solve x^2 - 5x + 6 = 0, so x = 2 or x = 3.",
  "1234567890 and 00042 and 3.14159265358979",
  "1/3 + 2/3 = 1; 10% of 250 is 25; -17 < -3",
  "\\frac{a+b}{c} = \\sqrt{x_1^2 + x_2^2}",
  "$$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$",
  "\\begin{align} f(x) &= \\int_0^\\infty e^{-x}\\,dx \\\\ &= 1 \\end{align}",
  "The final answer is \\boxed{\\dfrac{7}{12}}.",
  "∀ε>0 ∃δ>0: |x−a|<δ ⇒ |f(x)−f(a)|<ε, π≈3.14, √2, x² + y³, ½ ⅓",
  // code
  "def fib(n):\n    if n < 2:\n        return n\n    return fib(n-1) + fib(n-2)\n",
  "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}",
  "import numpy as np\nprint(np.arange(10).reshape(2, 5).sum(axis=0))",
  "```python\nx = {'a': 1, \"b\": [2, 3]}\n```",
  "if x != None and y >= 10:  # comment\n\t\tpass",
  // CJK, other scripts
  "你好，世界！我爱数学。",
  "日本語のテキストと数字123を含む文。",
  "한국어 문장입니다. 수학 문제를 풉니다.",
  "Привет, мир! Ünïcödé façade naïve Ångström",
  "עברית ومرحبا بالعالم हिन्दी ไทย",
  // emoji
  "emoji 😀🎉👍🏽 and flags 🇫🇷🇯🇵",
  "👨‍👩‍👧‍👦 family ❤️‍🔥 ok",
  "rare chars: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 ꙮ",
  // whitespace runs
  "a  b   c    d     e",
  "    indented with four spaces",
  "trailing spaces   ",
  "\n\n\nthree newlines then text\n",
  "tabs\t\tand\r\nCRLF\r\n\r\nlines",
  "   ",
  " ",
  "\t",
  "",
  "x",
  "non\u00a0breaking\u2003em space\u3000ideographic",
  // special tokens in text
  "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n",
  "<|endoftext|>text after<|endoftext|>",
  "<s>[INST] Solve 2x=4 [/INST] x=2</s>",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "<think>\nreasoning here\n</think>\n\nanswer",
  "text [MASK] more   [MASK]x and <sep>   after",
  "Say Hello world twice: Hello world!",
  "user said:    <|user|> hi <|user|>done",
  // mixed
  "I'm sure they'll say it's fine; we've done it, haven't we? DON'T",
  "https://example.com/a/b?q=1&r=2#frag <div class=\"x\">&amp;</div>",
  "CamelCaseIdentifiers and snake_case_names and SCREAMING_CASE",
];

// Texts also encoded with add_special_tokens (BOS as the post-processor says).
const withSpecial = new Set(["What is 2+3? The answer is 5.", "x", "", "<s>[INST] Solve 2x=4 [/INST] x=2</s>"]);

function rustify(tok) {
  const walkPre = (p) => {
    if (!p) return;
    if (p.constructor.name.startsWith("Digits")) {
      p.pattern = new RegExp(p.config.individual_digits ? "[^\\p{N}]+|\\p{N}" : "[^\\p{N}]+|\\p{N}+", "gu");
    }
    (p.tokenizers ?? []).forEach(walkPre);
  };
  walkPre(tok.pre_tokenizer);
  const walkDec = (d) => {
    if (!d) return;
    if (d.constructor.name.startsWith("Metaspace")) {
      const never = d.config.prepend_scheme === "never" || d.config.add_prefix_space === false;
      d.decode_chain = (tokens) =>
        tokens.map((t, i) => t.replaceAll(d.replacement, i === 0 && !never ? "" : " "));
    }
    (d.decoders ?? []).forEach(walkDec);
  };
  walkDec(tok.decoder);
  return tok;
}

function load(dir) {
  const tj = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
  const cp = path.join(dir, "tokenizer_config.json");
  const tc = fs.existsSync(cp) ? JSON.parse(fs.readFileSync(cp, "utf8")) : {};
  return rustify(new Tokenizer(tj, tc));
}

function cases(tok) {
  const out = [];
  for (const text of texts) {
    for (const special of withSpecial.has(text) ? [false, true] : [false]) {
      const ids = tok.encode(text, { add_special_tokens: special }).ids;
      const decoded = ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      const c = { text, ids, decoded };
      if (special) c.add_special_tokens = true;
      out.push(c);
    }
  }
  return out;
}

function write(file, name, tok) {
  const doc = { reference: `@huggingface/tokenizers@${version}`, tokenizer: name, encode: cases(tok) };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(doc, null, 1) + "\n");
  console.log(`${file}: ${doc.encode.length} cases`);
}

for (const name of ["smollm2", "tinyllama", "sp_metaspace"]) {
  write(path.join(testdata, name, "cases.json"), `testdata/${name}`, load(path.join(testdata, name)));
}
for (const name of fs.readdirSync(real).sort()) {
  const dir = path.join(real, name);
  if (!fs.existsSync(path.join(dir, "tokenizer.json"))) continue;
  write(path.join(testdata, "golden", `${name}.json`), `shared/fixtures/real/${name}`, load(dir));
}
