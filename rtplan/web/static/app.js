// rtplan web calculator: plain JavaScript, no build step. Every number shown comes
// from the JSON API (/api/...), which returns the objects of `rtplan ... --json`.
"use strict";

const MODEL_FIELDS = ["transition_dose_gy", "usc_alpha", "usc_d0_gy", "usc_dq_gy"];
const EQ_FIELDS = ["ref", "target_eqd2", "target_bed", "fractions", "dose_per_fraction", "ab"];
const MAX_PLANS = 12;
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939"];

const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(x, nd) {
  return (x === null || x === undefined) ? "n/a" : Number(x).toFixed(nd === undefined ? 2 : nd);
}

// -- plan rows -------------------------------------------------------------------------
function addPlanRow(value) {
  const rows = $("plans");
  if (rows.children.length >= MAX_PLANS) {
    $("plan-error").textContent = `at most ${MAX_PLANS} schedules or plans`;
    return null;
  }
  const row = el("div", { class: "plan-row" });
  const input = el("input", { class: "plan-input", maxlength: "2000",
                              "aria-label": "schedule, preset key or SIB plan JSON",
                              placeholder: "27/3" });
  input.value = value || "";
  const remove = el("button", { type: "button", class: "remove", title: "remove" }, "×");
  remove.addEventListener("click", () => { row.remove(); });
  const err = el("span", { class: "field-error", role: "alert" });
  row.append(input, remove, err);
  rows.append(row);
  return input;
}

function planValues() {
  return [...document.querySelectorAll(".plan-input")].map((i) => i.value.trim());
}

function setPlanRows(values) {
  $("plans").replaceChildren();
  for (const v of values) addPlanRow(v);
  if (!values.length) addPlanRow("");
}

// -- model options -----------------------------------------------------------------------
function showModelParams() {
  const m = $("model").value;
  for (const div of document.querySelectorAll(".model-params")) {
    div.hidden = div.dataset.model !== m;
  }
}

function modelParams(params) {
  const m = $("model").value;
  params.append("model", m);
  if (m === "lql") params.append("transition_dose_gy", $("transition_dose_gy").value.trim());
  if (m === "usc") {
    for (const f of ["usc_alpha", "usc_d0_gy", "usc_dq_gy"]) params.append(f, $(f).value.trim());
  }
}

// -- errors ------------------------------------------------------------------------------
function clearErrors(form) {
  for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
  for (const i of form.querySelectorAll(".invalid")) i.classList.remove("invalid");
  for (const f of ["model", ...MODEL_FIELDS]) $(`${f}-error`).textContent = "";
}

function showError(spanId, inputId, message) {
  const span = $(spanId);
  if (span) span.textContent = span.textContent ? `${span.textContent}; ${message}` : message;
  const input = inputId && $(inputId);
  if (input) input.classList.add("invalid");
}

function showCompareErrors(errors) {
  for (const e of errors) {
    if (e.field === "plan" && e.index !== null && e.index !== undefined) {
      const row = $("plans").children[e.index];
      if (row) {
        row.querySelector(".field-error").textContent = e.message;
        row.querySelector("input").classList.add("invalid");
        continue;
      }
    }
    if (e.field === "plan") showError("plan-error", null, e.message);
    else if (e.field === "ab") showError("ab-error", "ab", e.message);
    else if (e.field === "model" || MODEL_FIELDS.includes(e.field)) {
      showError(`${e.field}-error`, e.field, e.message);
    } else showError("compare-error", null, e.message);
  }
}

function showEqErrors(errors) {
  for (const e of errors) {
    if (EQ_FIELDS.includes(e.field)) showError(`eq-${e.field}-error`, `eq-${e.field}`, e.message);
    else if (e.field === "model" || MODEL_FIELDS.includes(e.field)) {
      showError(`${e.field}-error`, e.field, e.message);
    } else showError("eq-error", null, e.message);
  }
}

async function getJSON(path, params) {
  const resp = await fetch(`${path}?${params.toString()}`, { headers: { Accept: "application/json" } });
  let body;
  try { body = await resp.json(); } catch (_) { body = null; }
  if (!resp.ok) {
    const errors = (body && body.errors) || [{ field: null, message: `server answered ${resp.status}` }];
    return { errors };
  }
  return { data: body };
}

// -- URL state ---------------------------------------------------------------------------
function stateParams() {
  const p = new URLSearchParams();
  for (const v of planValues()) if (v) p.append("s", v);
  p.set("ab", $("ab").value.trim());
  p.set("model", $("model").value);
  for (const f of MODEL_FIELDS) if ($(f).value.trim()) p.set(f, $(f).value.trim());
  for (const f of EQ_FIELDS) {
    const v = $(`eq-${f}`).value.trim();
    if (v) p.set(`eq_${f}`, v);
  }
  return p;
}

function saveState() {
  history.replaceState(null, "", `${location.pathname}?${stateParams().toString()}`);
}

function restoreState() {
  const p = new URLSearchParams(location.search);
  setPlanRows(p.getAll("s").slice(0, MAX_PLANS));
  if (p.has("ab")) $("ab").value = p.get("ab");
  if (p.has("model") && ["lq", "lql", "usc"].includes(p.get("model"))) $("model").value = p.get("model");
  for (const f of MODEL_FIELDS) if (p.has(f)) $(f).value = p.get(f);
  let eq = false;
  for (const f of EQ_FIELDS) {
    if (p.has(`eq_${f}`)) { $(`eq-${f}`).value = p.get(`eq_${f}`); eq = true; }
  }
  showModelParams();
  return { compare: p.getAll("s").length > 0, equivalent: eq };
}

// -- compare: table, warnings, ranking -------------------------------------------------------
function renderTable(report) {
  const table = $("result-table");
  table.replaceChildren();
  const abs = report.alpha_beta_gy;
  const head = el("thead");
  const r1 = el("tr");
  for (const h of ["plan", "fractions", "category", "level", "dose (Gy)", "Gy/fx", "dose/fx class"]) {
    r1.append(el("th", { rowspan: "2" }, h));
  }
  for (const ab of abs) r1.append(el("th", { colspan: "2" }, `alpha/beta ${ab} Gy`));
  const r2 = el("tr");
  for (const _ of abs) { r2.append(el("th", {}, "EQD2 (Gy)")); r2.append(el("th", {}, "BED (Gy)")); }
  head.append(r1, r2);
  const body = el("tbody");
  for (const plan of report.plans) {
    plan.levels.forEach((lv, i) => {
      const tr = el("tr", { class: i === 0 ? "plan-first" : "" });
      tr.append(el("td", { title: plan.description || "" }, i === 0 ? plan.plan : ""));
      tr.append(el("td", {}, i === 0 ? String(plan.fractions) : ""));
      tr.append(el("td", {}, i === 0 ? plan.fraction_category : ""));
      tr.append(el("td", {}, lv.level));
      tr.append(el("td", { class: "num" }, fmt(lv.total_dose_gy, 2)));
      tr.append(el("td", { class: "num" }, fmt(lv.dose_per_fraction_gy, 3)));
      tr.append(el("td", {}, lv.dose_per_fraction_class));
      for (const r of lv.results) {
        const attrs = { "data-plan": plan.plan, "data-level": lv.level,
                        "data-ab": String(r.alpha_beta_gy) };
        tr.append(el("td", { class: "num eqd2", ...attrs }, fmt(r.eqd2_gy)));
        tr.append(el("td", { class: "num bed", ...attrs }, fmt(r.bed_gy)));
      }
      body.append(tr);
    });
  }
  table.append(el("caption", {}, `EQD2 and BED in Gy, model ${report.model}; each SIB level ` +
                                  "from its own dose per fraction"), head, body);
  table.hidden = false;

  const warnings = $("warnings");
  warnings.replaceChildren();
  for (const plan of report.plans) {
    for (const lv of plan.levels) {
      for (const w of lv.results[0].warnings) warnings.append(el("li", {}, `${plan.plan} ${lv.level}: ${w}`));
    }
  }
  const ranking = $("ranking");
  ranking.replaceChildren();
  if (report.plans.length > 1) {
    ranking.append(el("h3", {}, "Lesion EQD2 ranking (highest first)"));
    const ul = el("ul");
    for (const r of report.lesion_ranking) {
      ul.append(el("li", {}, `alpha/beta ${r.alpha_beta_gy} Gy: ${r.plans.join(" > ")}`));
    }
    ranking.append(ul);
  }
}

// -- plot: EQD2 versus alpha/beta (SVG drawn from /api/curve data) ------------------------------
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceTicks(lo, hi, n) {
  const step0 = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(step0)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || mag * 10;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(t);
  return ticks;
}

function renderPlot(curves, chosenAbs) {
  const W = 860, H = 400, L = 60, R = 300, T = 20, B = 50;
  const xs = curves.alpha_beta_gy;
  const all = curves.curves.flatMap((c) => c.eqd2_gy).filter((v) => v !== null);
  let ylo = Math.min(...all), yhi = Math.max(...all);
  const pad = (yhi - ylo) * 0.05 || 1;
  ylo = Math.max(0, ylo - pad); yhi += pad;
  const lx0 = Math.log(xs[0]), lx1 = Math.log(xs[xs.length - 1]);
  const X = (ab) => L + (Math.log(ab) - lx0) / (lx1 - lx0) * (W - L - R);
  const Y = (v) => T + (1 - (v - ylo) / (yhi - ylo)) * (H - T - B);
  const root = svg("svg", { id: "eqd2-plot", viewBox: `0 0 ${W} ${H}`, width: W, height: H,
                            role: "img", "aria-label": "EQD2 versus alpha/beta" });
  root.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "plot-area" }));
  for (const t of [0.5, 1, 1.5, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000]) {
    if (t < xs[0] || t > xs[xs.length - 1]) continue;
    root.append(svg("line", { x1: X(t), x2: X(t), y1: T, y2: H - B, class: "gridline" }));
    root.append(svg("text", { x: X(t), y: H - B + 16, class: "tick", "text-anchor": "middle" }, String(t)));
  }
  for (const t of niceTicks(ylo, yhi, 6)) {
    root.append(svg("line", { x1: L, x2: W - R, y1: Y(t), y2: Y(t), class: "gridline" }));
    root.append(svg("text", { x: L - 6, y: Y(t) + 4, class: "tick", "text-anchor": "end" }, String(Math.round(t * 100) / 100)));
  }
  root.append(svg("text", { x: (L + W - R) / 2, y: H - 10, class: "axis-label", "text-anchor": "middle" }, "alpha/beta (Gy, log scale)"));
  root.append(svg("text", { x: 14, y: (T + H - B) / 2, class: "axis-label", "text-anchor": "middle",
                            transform: `rotate(-90 14 ${(T + H - B) / 2})` }, "EQD2 (Gy)"));
  for (const ab of chosenAbs) {
    if (ab >= xs[0] && ab <= xs[xs.length - 1]) {
      root.append(svg("line", { x1: X(ab), x2: X(ab), y1: T, y2: H - B, class: "chosen-ab" }));
    }
  }
  const planColor = new Map();
  curves.curves.forEach((c) => { if (!planColor.has(c.plan)) planColor.set(c.plan, COLORS[planColor.size % COLORS.length]); });
  curves.curves.forEach((c, i) => {
    const pts = xs.map((ab, k) => `${X(ab).toFixed(1)},${Y(c.eqd2_gy[k]).toFixed(1)}`).join(" ");
    const dashed = c.level !== "lesion";
    root.append(svg("polyline", { points: pts, fill: "none", stroke: planColor.get(c.plan),
                                  "stroke-width": "2", "stroke-dasharray": dashed ? "6 4" : "none",
                                  class: "curve", "data-plan": c.plan, "data-level": c.level }));
    const ly = T + 14 + i * 18;
    root.append(svg("line", { x1: W - R + 10, x2: W - R + 34, y1: ly - 4, y2: ly - 4, stroke: planColor.get(c.plan),
                              "stroke-width": "2", "stroke-dasharray": dashed ? "6 4" : "none" }));
    root.append(svg("text", { x: W - R + 40, y: ly, class: "legend" }, `${c.plan} ${c.level === "lesion" ? "" : c.level}`.trim()));
  });
  for (const f of curves.lesion_flips) {
    root.append(svg("circle", { cx: X(f.alpha_beta_gy), cy: Y(f.eqd2_gy), r: 5, class: "flip" }));
  }
  const container = $("plot");
  container.replaceChildren(root);
  const cap = $("plot-caption");
  cap.replaceChildren();
  cap.append(el("span", {}, "EQD2 of each plan versus alpha/beta (solid: lesion; dashed: other " +
                            "levels; vertical lines: the chosen alpha/beta). "));
  if (curves.lesion_flips.length) {
    cap.append(el("span", {}, "Lesion ranking flips (circles): " + curves.lesion_flips.map(
      (f) => `${f.plans[0]} = ${f.plans[1]} at alpha/beta ${fmt(f.alpha_beta_gy)} Gy (EQD2 ${fmt(f.eqd2_gy)} Gy)`).join("; ") + "."));
  } else if (new Set(curves.curves.map((c) => c.plan)).size > 1) {
    cap.append(el("span", {}, "The lesion ranking does not flip in this range."));
  }
  $("plot-figure").hidden = false;
}

// -- actions -------------------------------------------------------------------------------
async function runCompare() {
  const form = $("compare-form");
  clearErrors(form);
  const params = new URLSearchParams();
  const plans = planValues();
  for (const v of plans) params.append("plan", v);
  params.append("ab", $("ab").value.trim());
  modelParams(params);
  saveState();
  if (!plans.length) {
    showError("plan-error", null, "add a schedule or a preset");
    return;
  }
  const res = await getJSON("/api/compare", params);
  if (res.errors) {
    showCompareErrors(res.errors);
    $("result-table").hidden = true;
    $("plot-figure").hidden = true;
    $("warnings").replaceChildren();
    $("ranking").replaceChildren();
    return;
  }
  renderTable(res.data);
  if ($("model").value === "usc") {
    $("plot").replaceChildren(el("p", { class: "hint" }, "USC fixes alpha/beta: no EQD2 versus alpha/beta plot."));
    $("plot-caption").replaceChildren();
    $("plot-figure").hidden = false;
    return;
  }
  const cparams = new URLSearchParams();
  for (const v of plans) cparams.append("plan", v);
  const abs = res.data.alpha_beta_gy;
  cparams.append("ab_min", String(Math.min(0.5, ...abs)));
  cparams.append("ab_max", String(Math.max(20, ...abs)));
  modelParams(cparams);
  const curve = await getJSON("/api/curve", cparams);
  if (curve.errors) {
    showCompareErrors(curve.errors);
    $("plot-figure").hidden = true;
    return;
  }
  renderPlot(curve.data, abs);
}

async function runEquivalent() {
  const form = $("eq-form");
  clearErrors(form);
  const params = new URLSearchParams();
  for (const f of EQ_FIELDS) {
    const v = $(`eq-${f}`).value.trim();
    if (v) params.append(f, v);
  }
  modelParams(params);
  saveState();
  const out = $("eq-result");
  out.replaceChildren();
  const res = await getJSON("/api/equivalent", params);
  if (res.errors) { showEqErrors(res.errors); return; }
  const r = res.data;
  const p = [];
  if (r.reference) p.push(`reference ${r.reference.schedule}: BED ${fmt(r.reference.bed_gy)} Gy, EQD2 ${fmt(r.reference.eqd2_gy)} Gy`);
  else p.push(`target: BED ${fmt(r.target_bed_gy)} Gy, EQD2 ${fmt(r.target_eqd2_gy)} Gy`);
  if (r.fractions_exact === undefined) {
    p.push(`equivalent: ${r.fractions} x ${fmt(r.dose_per_fraction_gy, 4)} Gy = ${fmt(r.total_dose_gy, 3)} Gy (EQD2 ${fmt(r.eqd2_gy)} Gy, BED ${fmt(r.bed_gy)} Gy)`);
  } else {
    p.push(`fractions of ${r.dose_per_fraction_gy} Gy needed: ${fmt(r.fractions_exact, 3)} (exact); smallest whole number reaching the target: ${r.fractions} x ${r.dose_per_fraction_gy} Gy = ${fmt(r.total_dose_gy, 2)} Gy (EQD2 ${fmt(r.eqd2_gy)} Gy)`);
  }
  p.push(`model ${r.model}, alpha/beta ${r.alpha_beta_gy} Gy`);
  for (const line of p) out.append(el("p", { class: "eq-line" }, line));
  if (r.options) {
    const t = el("table");
    const h = el("tr");
    for (const c of ["fractions", "dose (Gy)", "Gy/fx", "BED (Gy)", "EQD2 (Gy)"]) h.append(el("th", {}, c));
    t.append(h);
    for (const o of r.options) {
      const tr = el("tr");
      tr.append(el("td", {}, String(o.fractions)), el("td", { class: "num" }, fmt(o.total_dose_gy)),
                el("td", { class: "num" }, fmt(o.dose_per_fraction_gy, 3)),
                el("td", { class: "num" }, fmt(o.bed_gy)), el("td", { class: "num" }, fmt(o.eqd2_gy)));
      t.append(tr);
    }
    out.append(t);
  }
  const ws = [...r.warnings.map((w) => `solved schedule: ${w}`),
              ...(r.reference ? r.reference.warnings.map((w) => `reference: ${w}`) : [])];
  if (ws.length) {
    const ul = el("ul", { class: "warnings" });
    for (const w of ws) ul.append(el("li", {}, w));
    out.append(ul);
  }
}

async function loadPresets() {
  const res = await getJSON("/api/presets", new URLSearchParams());
  if (res.errors) return;
  const box = $("preset-buttons");
  for (const p of res.data.plans) {
    const b = el("button", { type: "button", class: "preset", title: p.plan.description, "data-key": p.key }, p.key);
    b.addEventListener("click", () => {
      const empty = [...document.querySelectorAll(".plan-input")].find((i) => !i.value.trim());
      if (empty) empty.value = p.key; else addPlanRow(p.key);
      runCompare();
    });
    box.append(b);
  }
  const tbox = $("tissue-buttons");
  for (const t of res.data.tissues) {
    const b = el("button", { type: "button", class: "tissue", title: `${t.label}: ${t.alpha_beta_gy} Gy (range ${t.range_gy[0]}-${t.range_gy[1]} Gy)` },
                 `${t.label} ${t.alpha_beta_gy}`);
    b.addEventListener("click", () => {
      const cur = $("ab").value.trim();
      $("ab").value = cur ? `${cur}, ${t.alpha_beta_gy}` : String(t.alpha_beta_gy);
    });
    tbox.append(b);
  }
}

function addSib() {
  const plan = {
    name: $("sib-name").value.trim() || "sib",
    fractions: Number($("sib-fractions").value),
    levels: [
      { name: "lesion", total_dose_gy: Number($("sib-lesion").value) },
      { name: "elective_nodes", total_dose_gy: Number($("sib-nodes").value) },
    ],
  };
  const empty = [...document.querySelectorAll(".plan-input")].find((i) => !i.value.trim());
  const text = JSON.stringify(plan);
  if (empty) empty.value = text; else addPlanRow(text);
}

document.addEventListener("DOMContentLoaded", () => {
  $("add-plan").addEventListener("click", () => { const i = addPlanRow(""); if (i) i.focus(); });
  $("add-sib").addEventListener("click", addSib);
  $("model").addEventListener("change", showModelParams);
  $("compare-form").addEventListener("submit", (ev) => { ev.preventDefault(); runCompare(); });
  $("eq-form").addEventListener("submit", (ev) => { ev.preventDefault(); runEquivalent(); });
  const state = restoreState();
  loadPresets();
  if (state.compare) runCompare();
  if (state.equivalent) runEquivalent();
  document.body.dataset.ready = "1";
});
