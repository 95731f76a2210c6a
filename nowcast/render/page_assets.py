"""The inline CSS and JavaScript of a run's page (:mod:`nowcast.render.page`).

No network, no library: the script reads the page's JSON (``#page-data``: the maps as
``[method, issue, product, lead, src]`` rows, their labels and the GIFs) and steps through
them with buttons, selects and the keyboard (left/right: lead, up/down: issue time, m/M:
method, p/P: product, space: play). The selection lives in the URL's fragment, so a page
that reloads (a batch's, while it runs) keeps its place.
"""

from __future__ import annotations

CSS = """
:root { --fg: #1b1f24; --muted: #5b6570; --line: #d5dbe1; --bg: #f6f8fa; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: #fff; }
header { padding: 12px 20px; border-bottom: 1px solid var(--line); background: var(--bg); }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 2px 0 0; color: var(--muted); }
nav.toc { margin-top: 6px; }
nav.toc a { margin-right: 14px; }
main { padding: 4px 20px 40px; }
section { margin-top: 18px; }
h2 { font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 3px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
h4 { font-size: 14px; margin: 12px 0 4px; }
a { color: var(--accent); }
.controls { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center;
  padding: 8px 10px; background: var(--bg); border: 1px solid var(--line); border-radius: 6px; }
.dim { display: flex; align-items: center; gap: 4px; }
.dim .name { color: var(--muted); min-width: 3.5em; text-align: right; }
.dim select { max-width: 22em; }
option.other { color: #8a949e; }
button { font: inherit; padding: 1px 9px; border: 1px solid #aab4be; border-radius: 4px;
  background: #fff; cursor: pointer; }
button:hover { background: #eef3f8; }
button:disabled { opacity: 0.4; cursor: default; }
.hint { color: var(--muted); font-size: 12px; }
.caption { margin: 6px 0; color: var(--muted); }
.caption b { color: var(--fg); }
.viewer img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
.missing { padding: 40px; color: var(--muted); border: 1px dashed var(--line); }
.side { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 10px; }
.side figure, .gallery figure { margin: 0; }
.side figcaption, .gallery figcaption { font-size: 12px; color: var(--muted); }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr));
  gap: 12px; }
.gallery img { width: 100%; height: auto; border: 1px solid var(--line); }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 2px 7px; }
th { background: var(--bg); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; max-width: 100%; }
table.kv th { text-align: left; vertical-align: top; white-space: nowrap; }
table.kv td { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
code { font-family: ui-monospace, monospace; font-size: 12px; background: var(--bg);
  padding: 0 3px; border-radius: 3px; }
details { margin: 6px 0; }
summary { cursor: pointer; color: var(--accent); }
details.fold > summary { font-weight: 600; font-size: 15px; margin: 12px 0 4px; }
.failed { color: #a40000; }
ul.files { padding-left: 18px; font-size: 12px; overflow-wrap: anywhere; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var node = document.getElementById("page-data");
  if (!node) { return; }
  var D = JSON.parse(node.textContent);
  var items = D.items || [];
  if (!items.length) { return; }
  var DIMS = ["m", "i", "p", "l"];
  var COL = { m: 0, i: 1, p: 2, l: 3 };
  var order = {};
  DIMS.forEach(function (d) {
    order[d] = D.values[d];
  });
  var state = { m: items[0][0], i: items[0][1], p: items[0][2], l: items[0][3] };
  var playing = null;

  function matches(row, skip, fixed) {
    for (var k = 0; k < DIMS.length; k++) {
      var d = DIMS[k];
      if (d === skip || (fixed && fixed.indexOf(d) < 0)) { continue; }
      if (row[COL[d]] !== state[d]) { return false; }
    }
    return true;
  }
  function options(d, fixed) {
    var seen = {};
    items.forEach(function (row) {
      if (matches(row, d, fixed)) { seen[row[COL[d]]] = true; }
    });
    return order[d].filter(function (v) { return seen[v]; });
  }
  function nearest(d, choices) {
    var all = order[d], at = all.indexOf(state[d]), best = choices[0], gap = 1e9;
    choices.forEach(function (v) {
      var g = Math.abs(all.indexOf(v) - at);
      if (g < gap) { gap = g; best = v; }
    });
    return best;
  }
  function settle(first) {
    var fixed = [first];
    DIMS.forEach(function (d) {
      if (d === first) { return; }
      var choices = options(d, fixed);
      if (choices.length && choices.indexOf(state[d]) < 0) { state[d] = nearest(d, choices); }
      fixed.push(d);
    });
  }
  function current() {
    for (var k = 0; k < items.length; k++) {
      if (matches(items[k], null, null)) { return items[k]; }
    }
    return null;
  }
  function label(d, v) { return (D.labels[d] && D.labels[d][v]) || v; }
  function el(id) { return document.getElementById(id); }

  function show() {
    var row = current();
    var img = el("map-image"), miss = el("map-missing");
    if (row) {
      img.src = row[4];
      img.alt = label("m", state.m) + ", " + label("i", state.i) + ", " + label("p", state.p) +
        ", " + label("l", state.l);
      img.style.display = "";
      miss.style.display = "none";
      el("map-link").href = row[4];
      el("map-link").textContent = decodeURIComponent(row[4]);
    } else {
      img.style.display = "none";
      miss.style.display = "";
    }
    el("map-caption").innerHTML = "";
    ["m", "i", "p", "l"].forEach(function (d) {
      var b = document.createElement("b");
      b.textContent = label(d, state[d]);
      el("map-caption").appendChild(b);
      el("map-caption").appendChild(document.createTextNode(d === "l" ? "" : " \u00b7 "));
    });
    DIMS.forEach(function (d) {
      var sel = el("sel-" + d);
      if (!sel) { return; }
      var ok = options(d);
      Array.prototype.forEach.call(sel.options, function (o) {
        o.className = ok.indexOf(o.value) < 0 ? "other" : "";
      });
      sel.value = state[d];
      var many = order[d].length > 1;
      el(d + "-prev").disabled = !many;
      el(d + "-next").disabled = !many;
    });
    var gif = D.gifs[[state.m, state.i, state.p].join("|")];
    var g = el("gif-link");
    if (gif) { g.href = gif; g.style.display = ""; } else { g.style.display = "none"; }
    sideBySide();
    preload();
    var h = DIMS.map(function (d) { return d + "=" + encodeURIComponent(state[d]); }).join("&");
    if (window.history && history.replaceState) { history.replaceState(null, "", "#" + h); }
  }
  function sideBySide() {
    var box = el("side"), on = el("side-toggle") && el("side-toggle").checked;
    box.innerHTML = "";
    box.style.display = on ? "" : "none";
    el("viewer-single").style.display = on ? "none" : "";
    if (!on) { return; }
    order.m.forEach(function (m) {
      var row = null;
      items.forEach(function (r) {
        if (!row && r[0] === m && r[1] === state.i && r[2] === state.p && r[3] === state.l) {
          row = r;
        }
      });
      if (!row) { return; }
      var fig = document.createElement("figure"), im = document.createElement("img");
      var cap = document.createElement("figcaption");
      im.src = row[4];
      im.alt = label("m", m);
      cap.textContent = label("m", m);
      var a = document.createElement("a");
      a.href = row[4];
      a.appendChild(im);
      fig.appendChild(cap);
      fig.appendChild(a);
      box.appendChild(fig);
    });
  }
  function preload() {
    var ok = options("l"), at = ok.indexOf(state.l);
    if (at < 0) { return; }
    var keep = state.l;
    state.l = ok[(at + 1) % ok.length];
    var row = current();
    state.l = keep;
    if (row) { (new Image()).src = row[4]; }
  }
  function step(d, delta) {
    var ok = options(d);
    if (ok.length < 2) { ok = order[d]; }
    var at = ok.indexOf(state[d]);
    state[d] = ok[((at < 0 ? 0 : at) + delta + ok.length) % ok.length];
    settle(d);
    show();
  }
  function set(d, v) { state[d] = v; settle(d); show(); }
  function play() {
    if (playing) {
      clearInterval(playing);
      playing = null;
      el("play").textContent = "play";
      return;
    }
    playing = setInterval(function () { step("l", 1); }, 800);
    el("play").textContent = "stop";
  }

  DIMS.forEach(function (d) {
    if (!el("sel-" + d)) { return; }
    el(d + "-prev").addEventListener("click", function () { step(d, -1); });
    el(d + "-next").addEventListener("click", function () { step(d, 1); });
    el("sel-" + d).addEventListener("change", function (e) { set(d, e.target.value); });
  });
  el("play").addEventListener("click", play);
  if (el("side-toggle")) { el("side-toggle").addEventListener("change", show); }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target && e.target.tagName) || "";
    if (tag === "SELECT" || tag === "TEXTAREA") { return; }
    if (tag === "INPUT" && e.target.type !== "checkbox") { return; }
    if ((tag === "BUTTON" || tag === "INPUT") && (e.key === " " || e.key === "Enter")) { return; }
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var keys = {
      ArrowRight: ["l", 1], ArrowLeft: ["l", -1], ArrowDown: ["i", 1], ArrowUp: ["i", -1],
      m: ["m", 1], M: ["m", -1], p: ["p", 1], P: ["p", -1]
    };
    if (e.key === " ") { e.preventDefault(); play(); return; }
    var k = keys[e.key];
    if (!k) { return; }
    e.preventDefault();
    step(k[0], k[1]);
  });
  (location.hash || "").replace(/^#/, "").split("&").forEach(function (part) {
    var kv = part.split("=");
    if (kv.length === 2 && COL.hasOwnProperty(kv[0])) {
      var v = decodeURIComponent(kv[1]);
      if (order[kv[0]].indexOf(v) >= 0) { state[kv[0]] = v; }
    }
  });
  settle("m");
  show();
})();
"""
