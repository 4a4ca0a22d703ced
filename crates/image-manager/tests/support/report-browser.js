// Opens a generated report in headless Chromium (puppeteer-core, no browser download) and
// checks it: no console errors or failed requests on any page, every link resolves, the graph
// has one shape per node, clicking a node opens its page, axe-core finds no serious or
// critical violation. Writes a screenshot of the graph page and prints a JSON summary.
//
//   NODE_PATH=<node_modules> node report-browser.js SITE_DIR CHROMIUM SCREENSHOT.png
"use strict";
const fs = require("fs");
const path = require("path");
const { pathToFileURL, fileURLToPath } = require("url");
const puppeteer = require("puppeteer-core");
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

async function main() {
  const [site, chromium, screenshot] = process.argv.slice(2);
  const problems = [];
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  let current = "";
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error on ${current}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`script error on ${current}: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed on ${current}: ${r.url()}`));

  // Every page reachable from the overview.
  const start = pathToFileURL(path.join(site, "index.html")).href;
  const seen = new Set([start]);
  const queue = [start];
  const axe = {};
  let links = 0;
  while (queue.length > 0) {
    const url = queue.shift();
    current = url.slice(pathToFileURL(site).href.length + 1);
    await page.goto(url, { waitUntil: "load" });
    const hrefs = await page.$$eval("a[href]", (as) =>
      as.map((a) => new URL(a.getAttribute("href"), document.baseURI).href)
    );
    for (const href of hrefs) {
      if (!href.startsWith("file:")) continue;
      links++;
      const target = href.split("#")[0];
      if (!fs.existsSync(fileURLToPath(target))) {
        problems.push(`${current} links to a missing ${target}`);
      } else if (target.endsWith(".html") && !seen.has(target)) {
        seen.add(target);
        queue.push(target);
      }
    }
    await page.addScriptTag({ content: axeSource });
    const result = await page.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, { resultTypes: ["violations"] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    });
    for (const v of result) {
      axe[v.id] = (axe[v.id] || 0) + v.nodes;
      if (v.impact === "serious" || v.impact === "critical") {
        problems.push(`axe ${v.impact} on ${current}: ${v.id} (${v.nodes} nodes)`);
      }
    }
  }

  // The graph: one shape per node, highlighting, and a click that navigates.
  current = "graph.html";
  await page.goto(pathToFileURL(path.join(site, "graph.html")).href, { waitUntil: "load" });
  const graph = await page.evaluate(() => ({
    nodes: document.querySelectorAll("figure.graph a.node").length,
    shapes: document.querySelectorAll("figure.graph a.node rect.node-shape").length,
    shapesOutsideNodes: document.querySelectorAll("figure.graph rect:not(.node-shape)").length,
  }));
  if (graph.nodes === 0 || graph.nodes !== graph.shapes || graph.shapesOutsideNodes !== 0) {
    problems.push(`graph: ${JSON.stringify(graph)}`);
  }
  await page.hover("figure.graph a.node");
  const highlighted = await page.$$eval("figure.graph a.node.hl", (n) => n.length);
  if (highlighted === 0) problems.push("hovering a node highlights nothing");
  await page.screenshot({ path: screenshot, fullPage: true });
  const expected = await page.$eval("figure.graph a.node", (a) =>
    new URL(a.getAttribute("href"), document.baseURI).href
  );
  await Promise.all([
    page.waitForNavigation({ waitUntil: "load" }),
    page.click("figure.graph a.node"),
  ]);
  const landed = page.url();
  if (landed !== expected) problems.push(`clicking a node opened ${landed}, not ${expected}`);
  const heading = await page.$eval("h1", (h) => h.textContent);

  await browser.close();
  const summary = { pages: seen.size, links, graph, highlighted, landed, heading, axe, problems };
  console.log(JSON.stringify(summary, null, 2));
  process.exit(problems.length === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(2);
});
