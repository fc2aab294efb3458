// The page of `council web`: it hears the report's versions as server-sent events and asks the
// server for what it shows. Text from the run (task ids, reasons, logs, pull request titles)
// only ever goes in as text: textContent, never markup.
const csrf = document.querySelector('meta[name="council-csrf"]').content;
const $ = (id) => document.getElementById(id);
const state = { status: "", q: "", offset: 0, limit: 200, matched: 0, open: null, version: -1,
  planDrawn: null, answered: false };
const STATUSES = ["queued", "running", "parked", "merging", "in_review", "done", "failed",
  "conflict", "cancelled", "waiting_for_checkout"];

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "width") node.style.width = value; // the CSSOM: allowed by the page's CSP
    else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  }
  return node;
}

const usd = (v) => (v == null ? "" : v >= 0.01 ? `$${v.toFixed(2)}` : `$${v.toPrecision(2)}`);

function say(text, bad = false) {
  $("said").textContent = text;
  $("said").className = bad ? "bad" : "";
}

async function getJson(url) {
  const answer = await fetch(url, { credentials: "same-origin" });
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || answer.statusText);
  return body;
}

async function act(url, body = {}) {
  const answer = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-council-csrf": csrf },
    body: JSON.stringify(body),
  });
  const said = await answer.json();
  if (answer.ok) say(said.said); else say(said.error || answer.statusText, true);
  await refresh();
}

function query() {
  const p = new URLSearchParams({ offset: state.offset, limit: state.limit });
  if (state.status) p.set("status", state.status);
  if (state.q) p.set("q", state.q);
  return p.toString();
}

let viewAsked = 0; // the newest view asked for: an older answer arriving later is dropped
async function refresh() {
  if (state.planDrawn) drawPlan().catch((err) => say(err.message, true)); // answered elsewhere?
  const asked = ++viewAsked;
  const view = await getJson(`/api/view?${query()}`);
  if (asked !== viewAsked) return;
  state.matched = view.matched;
  state.version = view.version;
  document.body.dataset.version = view.version;
  document.body.dataset.runStatus = view.status;
  drawRun(view);
  drawSpend(view);
  drawCost().catch((err) => say(err.message, true));
  drawRadar(view);
  drawPulls(view);
  drawTasks(view);
  if (state.open) await openTask(state.open);
}

function drawRun(view) {
  $("run").textContent = `session ${view.session_id} · ${view.status}` + (view.team ? ` · team ${view.team}` : "");
  $("resume").hidden = view.status !== "interrupted";
  const t = view.totals;
  $("totals").replaceChildren(el("p", {},
    `${t.tasks} tasks: ${t.done} done, ${t.pending} pending, ${t.failed} failed, ` +
    `${t.conflict} in conflict, ${t.cancelled} cancelled, ${t.in_review} in review, ${t.held} held`));
  $("workstations").replaceChildren(...view.workstations.map((w) =>
    el("p", {}, `workstation ${w.workstation} on ${w.host} (pid ${w.pid}): ${w.running} running`)));
}

function drawSpend(view) {
  const spend = view.spend;
  $("spend").textContent = spend ? spend.said : "no CLI call has cost anything yet";
  $("budgets").replaceChildren(...(spend ? spend.budgets : []).map((b) => {
    const limit = b.limit_usd ?? b.limit_tokens, spent = b.limit_usd != null ? b.spent_usd : b.spent_tokens;
    const share = limit ? Math.min(1, (spent || 0) / limit) : 0;
    const scope = budgetScope(b.scope);
    // Its ask: it is spent, or the run waits for it (the held call's forecast has no room);
    // a completed run waits for nothing, though its last call may have spent past the limit.
    const asks = view.status !== "completed" &&
      (share >= 1 || Boolean(spend.held && b.field && spend.held.includes(b.field)));
    const goOn = asks && view.budget_scopes.includes(scope) ? el("button", {
      "data-action": "go-on", "data-scope": scope, title: "room for its configured limit once more",
      on: { click: () => act("/api/budget", { scope, go_on: true }) } }, "Go on") : "";
    return el("div", { class: "chart-row", "data-budget": b.scope, "data-spent-tokens": b.spent_tokens ?? "",
      "data-limit-tokens": b.limit_tokens ?? "", "data-spent-usd": b.spent_usd ?? "", "data-limit-usd": b.limit_usd ?? "" },
      `${b.scope}`,
      el("span", {}, el("span", { class: share >= 1 ? "bar over" : "bar", width: `${share * 100}%` })),
      b.limit_usd != null ? `${usd(b.spent_usd || 0)} / ${usd(b.limit_usd)}` : `${spent || 0} / ${limit}`, goOn);
  }));
  const scope = $("raise-scope"), chosen = scope.value;
  scope.replaceChildren(...view.budget_scopes.map((s) => el("option", { value: s }, s)));
  if (chosen) scope.value = chosen;
  $("raise").hidden = view.budget_scopes.length === 0;
}

// A budget line's scope key (run, task:<id>, adapter:<name>) as `council budget raise` names it.
const budgetScope = (key) => (key.startsWith("adapter:") ? key.slice(8) : key.split(":")[0]);

let costAsked = 0; // the newest cost report asked for: an older answer arriving later is dropped
async function drawCost() {
  const by = $("cost-by").value, asked = ++costAsked;
  const cost = await getJson(`/api/cost?by=${encodeURIComponent(by)}`);
  if (asked !== costAsked) return;
  const groups = cost.groups.filter((g) => g.usd > 0).slice(0, 30);
  const top = Math.max(...groups.map((g) => g.usd), 0);
  $("chart").replaceChildren(...groups.map((g) => el("div", { class: "chart-row", "data-key": g.key }, g.key,
    el("span", {}, el("span", { class: "bar", width: `${top ? (g.usd / top) * 100 : 0}%` })),
    `${usd(g.usd)} · ${g.calls} calls`)));
}

function drawRadar(view) {
  $("collisions").replaceChildren(...view.collisions.map((c) =>
    el("li", {}, `${c.tasks.join(" × ")}: ${c.severity} on ${c.paths.join(", ")}`)));
  if (!view.collisions.length) $("collisions").replaceChildren(el("li", {}, "no overlap"));
}

// A pull request's place in its stack (landing.pulls: stacked): "stack 2: on #12 one, under #14 three".
function stackText(stack) {
  const named = (links) => links.map((x) => (x.number ? `#${x.number} ${x.task_id}` : x.task_id)).join(", ");
  const where = [];
  if (stack.below.length) where.push(`on ${named(stack.below)}`);
  if (stack.above.length) where.push(`under ${named(stack.above)}`);
  return where.length ? `stack ${stack.place}: ${where.join(", ")}` : `stack ${stack.place}`;
}

function drawPulls(view) {
  $("pulls").replaceChildren(...view.pulls.map((p) => {
    const link = el("a", { href: /^https?:\/\//.test(p.url) ? p.url : "#", rel: "noreferrer" }, `#${p.number}`);
    return el("li", {}, link, ` ${p.task_id}: ${p.state}, checks ${p.checks}, ${p.approvals} approvals` +
      (p.stack ? `, ${stackText(p.stack)}` : "") + (p.waiting ? `, waits for ${p.waiting}` : ""));
  }));
  if (!view.pulls.length) $("pulls").replaceChildren(el("li", {}, "none"));
}

function actions(row) {
  const cell = el("td", {});
  const ended = ["done", "failed", "conflict", "cancelled"].includes(row.status);
  if (!ended) cell.append(el("button", { "data-action": "cancel", on: { click: (e) => {
    e.stopPropagation(); act(`/api/task/${encodeURIComponent(row.task_id)}/cancel`); } } }, "Cancel"));
  if (ended && row.status !== "done") cell.append(el("button", { "data-action": "retry", on: { click: (e) => {
    e.stopPropagation(); act(`/api/task/${encodeURIComponent(row.task_id)}/retry`); } } }, "Retry"));
  return cell;
}

function drawTasks(view) {
  const end = Math.min(view.offset + view.tasks.length, view.matched);
  $("matched").textContent = `${view.matched ? view.offset + 1 : 0}–${end} of ${view.matched}`;
  $("tasks").tBodies[0].replaceChildren(...view.tasks.map((row) => {
    const services = (row.services || []).map((s) => `${s.name} ${s.state}`).join(", ");
    const why = [row.waiting, row.held, row.collision, services && `services: ${services}`, row.error]
      .filter(Boolean).join("; ");
    return el("tr", { class: "row", "data-task": row.task_id, "data-status": row.status,
      on: { click: () => openTask(row.task_id) } },
      el("td", {}, row.task_id), el("td", {}, el("span", { class: `st st-${row.status}` }, row.status)),
      el("td", {}, row.phase || ""), el("td", {}, row.adapter || ""), el("td", {}, String(row.attempts)),
      el("td", {}, row.status === "running" || row.status === "merging" ? row.holder || "" : ""),
      el("td", { class: "why" }, why), el("td", {}, usd(row.cost_usd)), actions(row));
  }));
}

async function openTask(taskId) {
  state.open = taskId;
  let task;
  try { task = await getJson(`/api/task/${encodeURIComponent(taskId)}`); }
  catch (err) { say(err.message, true); return; }
  $("detail-box").hidden = false;
  $("detail-id").textContent = taskId;
  $("timeline").replaceChildren(...Object.entries(task.report.phases || {}).map(([name, st]) =>
    el("span", { class: `phase phase-${st}` }, `${name}: ${st}`)));
  // Each service of its session: name, state, port, why it failed (text nodes only, as all).
  const services = (task.report.services || []).map((s) => `${s.name} ${s.state}` +
    (s.port ? ` on port ${s.port}` : "") + (s.why ? ` (${s.why})` : "")).join("; ");
  const r = task.report, facts = [["status", r.status], ["attempts", r.attempts], ["adapter", r.adapter],
    ["branch", r.branch], ["held by", r.holder], ["waits", r.waiting], ["held", r.held], ["held until", r.held_until],
    ["collision", r.collision], ["services", services], ["error", r.error], ["cost", usd(r.cost_usd)], ["started", r.started_at],
    ["finished", r.finished_at]];
  $("detail").replaceChildren(...facts.filter(([, v]) => v != null && v !== "").flatMap(([k, v]) =>
    [el("dt", {}, k), el("dd", {}, String(v))]));
  const diff = el("details", { class: "diff" }, el("summary", {}, "diff against its base"),
    el("pre", {}, task.diff));
  $("logs").replaceChildren(diff, ...task.logs.map((log) => el("details", { class: "log" },
    el("summary", {}, log.name + (log.clipped ? " (its end)" : "")), el("pre", {}, log.text))));
}

// A goal's plan held before it runs (`council run -g GOAL --approve`): each task's id, files and
// dependencies as text, its prompt in a text area to edit, a button to remove it; Accept sends
// the tasks left, Refuse refuses it. A drawn pending plan is kept as edited until answered.
async function drawPlan() {
  const held = (await getJson("/api/plan")).plan;
  const pending = held?.status === "pending";
  $("plan-box").hidden = !held || (!pending && !state.answered); // an old plan's answer: not shown
  document.body.dataset.plan = held ? held.status : "";
  if (!held) return false;
  $("plan-status").textContent = held.status;
  $("plan-goal").textContent = held.goal;
  $("plan-config").textContent = `saved as ${held.config}`;
  $("plan-accept").hidden = $("plan-refuse").hidden = !pending;
  if (pending && state.planDrawn === held.config) return true;
  state.planDrawn = pending ? held.config : null;
  $("plan-tasks").replaceChildren(...held.tasks.map((task) => planRow(task, pending)));
  return pending;
}

function planRow(task, pending) {
  const prompt = el("textarea", { class: "plan-prompt", rows: "3", "aria-label": `prompt of ${task.id}` });
  prompt.value = task.prompt ?? "";
  prompt.readOnly = !pending;
  const facts = [(task.files || []).length ? `files ${task.files.join(", ")}` : "",
    (task.depends_on || []).length ? `after ${task.depends_on.join(", ")}` : ""].filter(Boolean).join("; ");
  const row = el("li", { "data-plan-task": task.id }, el("strong", {}, String(task.id)), " ",
    el("span", { class: "quiet" }, facts), prompt);
  if (pending) row.append(el("button", { type: "button", "data-action": "remove",
    on: { click: () => row.remove() } }, "Remove"));
  return row;
}

async function answerPlan(accept) {
  const tasks = [...document.querySelectorAll("#plan-tasks li[data-plan-task]")].map((row) =>
    ({ id: row.dataset.planTask, prompt: row.querySelector("textarea").value }));
  const answer = await fetch(accept ? "/api/plan/accept" : "/api/plan/refuse", {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json", "x-council-csrf": csrf },
    body: JSON.stringify(accept ? { tasks } : {}),
  });
  const said = await answer.json();
  if (!answer.ok) { say(said.error || answer.statusText, true); return; }
  say(said.said);
  state.answered = true;
  await drawPlan();
  if (accept) awaitRun();
}

// Once accepted, the run starts: its page comes when its session is on record (the server of
// `run -g --approve --web` serves it on the same port and token), then the page is reloaded.
function awaitRun() {
  const look = () => fetch(`/api/view?${query()}`, { credentials: "same-origin" }).then((answer) => {
    if (answer.ok) window.location.reload(); else setTimeout(look, 1000);
  }, () => setTimeout(look, 1000));
  look();
}

function listen() {
  const source = new EventSource("/events");
  source.onopen = () => $("live").classList.add("on");
  source.onerror = () => $("live").classList.remove("on");
  source.onmessage = (event) => {
    if (Number(event.data) !== state.version) refresh().catch((err) => say(err.message, true));
  };
}

function setUp() {
  $("status-filter").append(...STATUSES.map((s) => el("option", { value: s }, s)));
  $("status-filter").addEventListener("change", (e) => { state.status = e.target.value; state.offset = 0; refresh(); });
  let typing;
  $("search").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.q = e.target.value; state.offset = 0; refresh(); }, 200);
  });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); refresh(); });
  $("next").addEventListener("click", () => {
    if (state.offset + state.limit < state.matched) { state.offset += state.limit; refresh(); }
  });
  $("resume").addEventListener("click", () => act("/api/resume"));
  $("cost-by").addEventListener("change", () => drawCost().catch((err) => say(err.message, true)));
  $("raise").addEventListener("submit", (e) => {
    e.preventDefault();
    act("/api/budget", { scope: $("raise-scope").value, usd: $("raise-usd").value, tokens: $("raise-tokens").value });
  });
  $("plan-accept").addEventListener("click", () => answerPlan(true).catch((err) => say(err.message, true)));
  $("plan-refuse").addEventListener("click", () => answerPlan(false).catch((err) => say(err.message, true)));
  drawPlan().catch(() => false).then(refresh).then(listen, (err) => {
    // No run yet while a goal's plan waits: the plan alone, and its run once accepted.
    if (document.body.dataset.plan === "pending") {
      document.querySelector("main").hidden = true;
      state.answered = true; // its answer stays shown, given here or by `council approve`
      const look = setInterval(async () => {
        if (await drawPlan().catch(() => true)) return;
        clearInterval(look);
        if (document.body.dataset.plan === "accepted") awaitRun();
      }, 2000);
      return;
    }
    if (document.body.dataset.plan === "accepted") { awaitRun(); return; }
    say(err.message, true);
    listen();
  });
}

setUp();
