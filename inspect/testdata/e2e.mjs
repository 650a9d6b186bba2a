// End-to-end check of `crucible inspect` in headless Chromium, driven by
// cmd/crucible's TestInspectInBrowser: overview -> rows -> a solution with
// code output -> eval chart -> funnel, and a generation holding a script
// that must not run. Screenshots go to $SHOTS.
//
// env: URL (the server), SHOTS (a folder), CRUCIBLE_PLAYWRIGHT (a
// node_modules folder holding playwright-core), CHROMIUM (the browser).
import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(join(process.env.CRUCIBLE_PLAYWRIGHT, "noop.js"));
const { chromium } = require("playwright-core");

const base = process.env.URL.replace(/\/$/, "");
const shots = process.env.SHOTS;
const profile = mkdtempSync(join(tmpdir(), "crucible-e2e-"));

function check(cond, msg) {
  if (!cond) throw new Error("check failed: " + msg);
  console.log("ok   " + msg);
}

// A fresh profile (--user-data-dir, which playwright passes for a
// persistent context) and no background traffic.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
let failed = false;
try {
  const page = await browser.newPage();
  const dialogs = [];
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) external.push(r.url()); });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  // 1. Overview: every stage done, with its rows.
  await page.goto(base + "/");
  await page.waitForSelector("#stages");
  for (const s of ["solve", "grade", "keep"]) {
    const status = await page.textContent(`tr[data-stage="${s}"] [data-k="status"]`);
    check(status.trim() === "done", `stage ${s} is done (${status.trim()})`);
  }
  check((await page.textContent('tr[data-stage="solve"]')).includes("generate"), "solve ran generate");
  await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });

  // 2. Rows of the graded stage, then an expression filter.
  await page.click('tr[data-stage="grade"] a.v-rows');
  await page.waitForSelector("#rows");
  const all = await page.$$("#rows a.rowlink");
  check(all.length === 24, `rows browser shows 24 rows (${all.length})`);
  await page.fill('input[name="where"]', "is_correct == false");
  await Promise.all([page.waitForNavigation(), page.click("form.filters button")]);
  const wrong = await page.$$("#rows a.rowlink");
  const count = await page.textContent("#count");
  check(wrong.length > 0 && wrong.length < 24 && count.includes(`of ${wrong.length} matching`), `where filter keeps ${wrong.length} rows: ${count.trim()}`);
  await page.screenshot({ path: join(shots, "rows.png"), fullPage: true });

  // 3. A solution with code and its sandbox output, math typeset by KaTeX.
  await page.fill('input[name="where"]', "");
  await page.fill('input[name="q"]', "print(");
  await Promise.all([page.waitForNavigation(), page.click("form.filters button")]);
  await Promise.all([page.waitForNavigation(), page.click("#rows a.rowlink >> nth=0")]);
  await page.waitForSelector("#generation");
  check((await page.textContent("#generation code.language-python")).includes("print(x)"), "code block shown");
  check((await page.textContent("#generation code.language-output")).includes("42"), "sandbox output shown");
  await page.waitForSelector("#problem .katex");
  check((await page.$$(".katex")).length > 0, "math typeset by KaTeX");
  check((await page.textContent("#predicted")).trim().length > 0, "extracted answer shown");
  check(await page.isVisible("#verdict .badge"), "verdict shown");
  check(await page.isHidden("#reasoning .md") || (await page.$("#reasoning")) === null, "reasoning folded");
  await page.screenshot({ path: join(shots, "solution.png"), fullPage: true });

  // 4. A generation holding <script>alert(1)</script> shows it as text.
  await page.goto(base + "/rows?f=" + encodeURIComponent(new URL(page.url()).searchParams.get("f")) + "&q=alert");
  await Promise.all([page.waitForNavigation(), page.click("#rows a.rowlink >> nth=0")]);
  await page.waitForSelector("#generation");
  const gen = await page.textContent("#generation");
  check(gen.includes("<script>alert(1)</script>"), "script tag shown as text");
  check((await page.$$("#generation script, #generation img")).length === 0, "no script or img element from the row");
  check(dialogs.length === 0, `no alert ran (${dialogs.join(",")})`);

  // 5. Eval: charts drawn by the server; a bar opens the rows behind it.
  await page.goto(base + "/");
  await Promise.all([page.waitForNavigation(), page.click('tr[data-stage="grade"] a.v-eval')]);
  await page.waitForSelector("#charts svg.chart");
  const charts = await page.$$("#charts svg.chart");
  check(charts.length >= 4, `eval has ${charts.length} charts`);
  check((await page.textContent("#metrics")).includes("pass@4"), "metrics table has pass@4");
  check((await page.textContent("#charts")).includes("pass@k and majority@k vs k"), "pass@k chart");
  await page.screenshot({ path: join(shots, "eval.png"), fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click("svg.bar a.barlink >> nth=0")]);
  check(page.url().includes("where="), "a bar links to its rows");
  check((await page.$$("#rows a.rowlink")).length > 0, "the bar's rows are listed");

  // 6. Curation funnel and the rows each step removed.
  await page.goto(base + "/");
  await Promise.all([page.waitForNavigation(), page.click('tr[data-stage="keep"] a.v-curate')]);
  await page.waitForSelector("svg.funnel");
  const ft = await page.textContent("#funnel");
  check(ft.includes("correct") && ft.includes("removed"), "funnel shows the steps");
  check((await page.textContent("main")).includes("removed by correct"), "removed samples per step");
  await page.screenshot({ path: join(shots, "funnel.png"), fullPage: true });

  check(external.length === 0, `no request left the server (${external.join(" ")})`);
  check(errors.length === 0, `no script errors (${errors.join(" | ")})`);
  check(dialogs.length === 0, "no dialog at all");
} catch (e) {
  failed = true;
  console.error("E2E FAILED:", e.message);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failed) process.exit(1);
console.log("E2E OK");
