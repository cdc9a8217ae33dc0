/* evaluator report: draws the plotly charts from each .chart element's data-spec (JSON in an
   attribute, so the HTML parser decodes it and nothing in it can become markup), follows chart clicks
   to links within the report only, draws the judgment view from its data and highlights the evidence
   a quote link points at. No network.

   The judgment view is built with createElement and text nodes only: no string from the data is ever
   parsed as HTML (no innerHTML), and links are set only if they stay within the report. */
(function () {
  "use strict";

  /* A link that stays in this report: same scheme and host once resolved (so no javascript:, data:,
     //elsewhere, /\elsewhere, or a scheme hidden behind spaces or tabs). */
  function isRelative(url) {
    if (typeof url !== "string" || url.length === 0 || /^[a-zA-Z][a-zA-Z0-9+.\-]*:/.test(url) ||
        /^[\/\\]{2}/.test(url)) { return false; }
    try {
      var u = new URL(url, document.baseURI);
      return u.protocol === location.protocol && u.host === location.host;
    } catch (e) { return false; }
  }

  function draw(el) {
    var spec;
    try { spec = JSON.parse(el.getAttribute("data-spec")); } catch (e) { el.textContent = "This chart's data could not be read."; return; }
    if (typeof Plotly === "undefined") { el.textContent = "The chart library did not load."; return; }
    Plotly.newPlot(el, spec.data, spec.layout, { displayModeBar: false, responsive: true }).then(function () {
      el.setAttribute("data-rendered", "1");
    });
    if (spec.click === "customdata0") {
      el.on("plotly_click", function (ev) {
        var p = ev && ev.points && ev.points[0];
        if (!p) { return; }
        var cd = p.customdata;
        var url = Array.isArray(cd) ? cd[0] : cd;
        if (isRelative(url)) { window.location.href = url; }
      });
    }
  }
  document.querySelectorAll(".chart[data-spec]").forEach(draw);

  var form = document.getElementById("filters");
  if (form) {
    form.querySelectorAll("select, input").forEach(function (input) {
      input.addEventListener("change", function () { form.submit(); });
    });
    form.addEventListener("formdata", function (ev) {
      var empty = [];
      ev.formData.forEach(function (value, key) { if (value === "") { empty.push(key); } });
      empty.forEach(function (key) { ev.formData.delete(key); });
    });
  }

  function pulse(key) {
    document.querySelectorAll("mark.ev").forEach(function (m) {
      var keys = (m.getAttribute("data-keys") || "").split(" ");
      m.classList.toggle("pulse", keys.indexOf(key) >= 0);
    });
  }
  function wireQuotes(root) {
    root.querySelectorAll("a.quote[data-key]").forEach(function (a) {
      a.addEventListener("click", function () { pulse(a.getAttribute("data-key")); });
    });
  }

  /* -- the judgment view ------------------------------------------------------------------------ */

  function add(parent, children) {
    if (children === null || children === undefined || children === false) { return parent; }
    if (!Array.isArray(children)) { children = [children]; }
    children.forEach(function (c) {
      if (c === null || c === undefined || c === false) { return; }
      if (Array.isArray(c)) { add(parent, c); return; }
      parent.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
    return parent;
  }
  function h(tag, cls, children) {
    var el = document.createElement(tag);
    if (cls) { el.className = cls; }
    return add(el, children);
  }
  function a(href, cls, children) {
    var el = h("a", cls, children);
    if (typeof href === "string" && (href.charAt(0) === "#" || isRelative(href))) { el.setAttribute("href", href); }
    return el;
  }
  function empty(title, text) {
    return h("div", "empty", [h("div", "empty-title", title), h("div", "empty-text", text)]);
  }
  /* The templates' number, cost and flag formats (pages.py: _fmt_num, _fmt_cost). */
  function num(v, digits) {
    if (v === null || v === undefined) { return "–"; }
    var opts = digits === undefined ? {} : { minimumFractionDigits: digits, maximumFractionDigits: digits };
    return Number(v).toLocaleString("en-US", opts);
  }
  function cost(v) {
    if (v === null || v === undefined) { return "unknown"; }
    return "$" + (v < 1 ? num(v, 4) : num(v, 2));
  }
  function str(v, dflt) { return v === null || v === undefined || v === "" ? dflt : String(v); }
  function capitalize(s) { return s.charAt(0).toUpperCase() + s.slice(1).toLowerCase(); }

  function pill(d, ctx) {
    if (d.status === "scored" && d.score !== null && d.score !== undefined) {
      var p = h("span", "pill", String(d.score));
      var colors = ctx.colors || {};
      var color = Object.prototype.hasOwnProperty.call(colors, String(d.score)) ? colors[String(d.score)] : "#9ca3af";
      p.style.background = /^#[0-9a-fA-F]{3,8}$/.test(color) ? color : "#9ca3af";
      return p;
    }
    if (d.status === "not_observed") { var na = h("span", "pill na", "n/o"); na.title = "not observed"; return na; }
    var bad = h("span", "pill bad", "–");
    bad.title = "unscored";
    return bad;
  }
  /* Where each code point of a string starts in its UTF-16 units, or null when they are the same
     (stored spans count code points, as Python does; JavaScript strings count UTF-16 units). */
  function unitOffsets(text) {
    if (!/[\uD800-\uDFFF]/.test(text)) { return null; }
    var at = [], pos = 0;
    Array.from(text).forEach(function (ch) { at.push(pos); pos += ch.length; });
    at.push(pos);
    return at;
  }
  /* A text split at the stored evidence spans ({start, end, key}, as the verifier found them):
     plain strings and highlighted {t, k: keys}; overlapping quotes make one mark with every key. */
  function highlight(text, spans) {
    var at = unitOffsets(text), n = at ? at.length - 1 : text.length, bounds = [0, text.length], marks = [];
    spans.forEach(function (sp) {
      if (!(Number.isInteger(sp.start) && Number.isInteger(sp.end) && sp.start >= 0 && sp.start < sp.end && sp.end <= n)) { return; }
      var m = { a: at ? at[sp.start] : sp.start, b: at ? at[sp.end] : sp.end, key: sp.key };
      marks.push(m);
      bounds.push(m.a, m.b);
    });
    bounds = bounds.filter(function (v, i, all) { return all.indexOf(v) === i; }).sort(function (x, y) { return x - y; });
    var out = [];
    for (var i = 0; i + 1 < bounds.length; i++) {
      var a = bounds[i], b = bounds[i + 1];
      var keys = marks.filter(function (m) { return m.a <= a && b <= m.b; }).map(function (m) { return m.key; });
      var last = out.length ? out[out.length - 1] : null;
      if (last !== null && (typeof last === "string" ? keys.length === 0 : last.k.join(" ") === keys.join(" "))) {
        if (typeof last === "string") { out[out.length - 1] = last + text.slice(a, b); } else { last.t += text.slice(a, b); }
      } else {
        out.push(keys.length ? { t: text.slice(a, b), k: keys } : text.slice(a, b));
      }
    }
    return out;
  }
  /* Text with its evidence highlighted; the first mark of each quote carries its anchor (#mark-KEY). */
  function segments(parent, segs, titled, found) {
    segs.forEach(function (s) {
      if (typeof s === "string") { parent.appendChild(document.createTextNode(s)); return; }
      s.k.forEach(function (key) {
        if (found[key]) { return; }
        found[key] = true;
        var anchor = h("span", "anchor");
        anchor.id = "mark-" + key;
        parent.appendChild(anchor);
      });
      var mark = h("mark", "ev", s.t);
      mark.setAttribute("data-keys", s.k.join(" "));
      if (titled) { mark.title = s.k.join(", "); }
      parent.appendChild(mark);
    });
  }
  function flagGroups(flags) {
    var groups = {}, kinds = [];
    (Array.isArray(flags) ? flags : []).forEach(function (fl) {
      if (!fl || typeof fl !== "object") { return; }
      var kind = str(fl.kind, "");
      if (!Object.prototype.hasOwnProperty.call(groups, kind)) { groups[kind] = []; kinds.push(kind); }
      groups[kind].push(fl);
    });
    kinds.sort();
    return kinds.map(function (kind) { return { kind: kind, items: groups[kind] }; });
  }

  /* payload: {j: the stored judgment, t: the text it was judged on as stored ({turns, code}) or null,
     t_note: why there is none, candidate_url}; ctx: what all share. */
  function renderJudgment(view, payload, ctx) {
    var j = payload.j, t = payload.t && typeof payload.t === "object" ? payload.t : null;
    var names = ctx.names || {};
    /* each quote's stored span, by the turn or code file it was found in */
    var spans = Object.create(null);
    (j.dims || []).forEach(function (d) {
      (Array.isArray(d.evidence) ? d.evidence : []).forEach(function (e, k) {
        if (e && typeof e.source === "string") {
          (spans[e.source] = spans[e.source] || []).push({ start: e.start, end: e.end, key: d.id + "-" + k });
        }
      });
    });
    var found = Object.create(null);
    var turnsBox = null, codeBoxes = [];
    if (t) {
      var flagged = Object.create(null);
      (Array.isArray(j.flags) ? j.flags : []).forEach(function (fl) { if (fl && fl.source) { flagged[fl.source] = true; } });
      turnsBox = h("div", "turns");
      (Array.isArray(t.turns) ? t.turns : []).forEach(function (turn) {
        var id = str(turn.id, ""), isFlagged = flagged[id] === true;
        var head = h("div", "turn-head", [h("span", "speaker", str(turn.speaker, "")), h("span", "muted small", [
          id, turn.timestamp ? " · " + turn.timestamp : null,
          isFlagged ? [" · ", h("span", "badge flag", "flagged")] : null])]);
        var text = h("div", "turn-text");
        segments(text, highlight(str(turn.text, ""), spans[id] || []), true, found);
        var box = h("div", "turn role-" + str(turn.role, "unknown").replace(/[^a-z]/g, "") + (isFlagged ? " flagged" : ""), [head, text]);
        box.id = "turn-" + id;
        add(turnsBox, box);
      });
      (Array.isArray(t.code) ? t.code : []).forEach(function (c) {
        var name = str(c.name, ""), title = h("h3", "code-title", name);
        title.id = "code-" + name;
        var pre = h("pre", "code");
        segments(pre, highlight(str(c.content, ""), spans[name] || []), false, found);
        codeBoxes.push(title, pre);
      });
    }
    var frag = document.createDocumentFragment();
    frag.appendChild(h("div", "titlerow", h("div", null, [
      h("div", "eyebrow", [a(ctx.overview_url, null, "Overview"), " › ", a(payload.candidate_url, null, str(j.candidate, "")), " › Judgment"]),
      h("h1", null, str(j.title, str(j.exercise, ""))),
      h("div", "sub", [str(j.session_date, "–"), " · ", str(j.exercise, ""), " · ", h("span", "badge st-" + str(j.status, ""), str(j.status, "")),
                       j.reason ? [" ", h("span", "muted", String(j.reason))] : null])
    ])));

    flagGroups(j.flags).forEach(function (g) {
      var list = h("ul", "flaglist");
      g.items.forEach(function (fl) {
        add(list, h("li", null, [str(fl.detail, ""), fl.source ? [" ", a("#turn-" + fl.source, null, String(fl.source))] : null]));
      });
      frag.appendChild(h("div", "alert " + (g.kind.indexOf("inject") >= 0 ? "danger" : "warn"), [
        h("b", null, capitalize((g.kind || "flag").replace(/_/g, " "))), g.items.length > 1 ? " (" + g.items.length + ")" : null, list]));
    });

    var calls = j.calls || 0;
    var facts = [
      ["Judge", str(j.model, ""), "(" + str(j.judge_kind, "–") + ", prompt " + str(j.prompt_version, "–") + ")"],
      ["Rubric", str(j.rubric_version, ""), null, "mono"],
      ["Cost", cost(j.cost_usd), calls + " call" + (calls !== 1 ? "s" : "") + " · " + num(j.prompt_tokens) + " + " + num(j.completion_tokens) + " tokens"],
      ["Cohort", str(j.cohort, "–")],
      ["Judged", str(j.created_at, "–")],
      ["Source", str(j.source, ""), null, "mono"]
    ];
    var factBox = h("section", "facts");
    facts.forEach(function (f) {
      add(factBox, h("div", null, [h("span", null, f[0]), h("b", f[3] || null, f[1]), f[2] ? [" ", h("span", "muted", f[2])] : null]));
    });
    frag.appendChild(factBox);

    var scale = ctx.scale || [1, 5];
    var scores = h("section", "card scores", h("h2", null, ["Scores ", h("span", "muted small", "scale " + scale[0] + "–" + scale[1])]));
    (j.dims || []).forEach(function (d) {
      var dim = h("div", "dim", h("div", "dim-head", [pill(d, ctx), h("span", "dim-name",
        Object.prototype.hasOwnProperty.call(names, d.id) ? names[d.id] : str(d.id, ""))]));
      dim.id = "dim-" + d.id;
      if (d.status === "unscored") { add(dim, h("div", "reason", "Unscored: " + str(d.reason, "no reason given"))); }
      if (d.rationale) { add(dim, h("p", "rationale", String(d.rationale))); }
      var evidence = Array.isArray(d.evidence) ? d.evidence : [];
      if (evidence.length) {
        var ul = h("ul", "evidence");
        evidence.forEach(function (e, k) {
          e = e || {};
          var key = d.id + "-" + k, text = "“" + str(e.quote, "") + "”", quote;
          if (found[key]) {
            quote = a("#mark-" + key, "quote", text);
            quote.setAttribute("data-key", key);
          } else {
            quote = h("span", "quote", text);
          }
          var match = typeof e.match === "number" && e.match < 100 ? " · " + num(e.match, 0) + "% match" : null;
          add(ul, h("li", null, [quote, " ", h("span", "muted small", [
            str(e.source, "unlocated"), match, t && !found[key] ? " · not located in the stored text" : null])]));
        });
        add(dim, ul);
      }
      var dropped = Array.isArray(d.dropped_evidence) ? d.dropped_evidence : [];
      if (dropped.length) {
        var box = h("div", "dropped", "Quotes the judge gave that are not in the transcript (dropped): ");
        dropped.forEach(function (q, i) {
          add(box, [h("span", "strike", "“" + str(q, "") + "”"), i < dropped.length - 1 ? ", " : null]);
        });
        add(dim, box);
      }
      add(scores, dim);
    });
    if (Array.isArray(j.warnings) && j.warnings.length) {
      var warnings = h("ul", "plain");
      j.warnings.forEach(function (w) { add(warnings, h("li", null, typeof w === "string" ? w : JSON.stringify(w))); });
      add(scores, [h("h3", null, "Warnings"), warnings]);
    }

    var transcript = h("section", "card transcript", h("h2", null, "Transcript"));
    if (!t) {
      add(transcript, empty("Transcript not shown", str(payload.t_note, "The transcript is not in the store.")));
    } else {
      add(transcript, [turnsBox, codeBoxes]);
    }
    frag.appendChild(h("div", "judgment-grid", [scores, transcript]));

    view.textContent = "";
    view.appendChild(frag);
    document.title = str(j.title, str(j.source, str(j.id, "Judgment"))) + " · evaluator report";
    wireQuotes(view);
    view.setAttribute("data-rendered", "1");
  }

  /* The page's #fragment (a quote, turn or dimension) did not exist when the page loaded: go there now. */
  function showHash() {
    var target = null;
    try { target = location.hash.length > 1 && document.getElementById(decodeURIComponent(location.hash.slice(1))); } catch (e) { return; }
    if (target) { target.scrollIntoView(); }
  }

  function notFound(view, id) {
    view.textContent = "";
    view.appendChild(h("div", "titlerow", h("div", null, [h("div", "eyebrow", "Judgment"), h("h1", null, "No such judgment")])));
    view.appendChild(empty("No such judgment in this report", id
      ? "This report has no judgment with id " + id + ": it may have been built with other filters."
      : "The link names no judgment: open one from a candidate page or the list of judgments."));
    view.setAttribute("data-rendered", "1");
  }

  /* Which data file holds a judgment: CRC-32 of its id modulo the number of files, as the build
     (pages.data_file_of, zlib.crc32) computed it. Ids are ASCII letters, digits and dashes. */
  var CRC_TABLE = (function () {
    var table = [];
    for (var n = 0; n < 256; n++) {
      var c = n;
      for (var k = 0; k < 8; k++) { c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; }
      table.push(c >>> 0);
    }
    return table;
  })();
  function crc32(text) {
    var c = 0xFFFFFFFF;
    for (var i = 0; i < text.length; i++) { c = CRC_TABLE[(c ^ text.charCodeAt(i)) & 0xFF] ^ (c >>> 8); }
    return (c ^ 0xFFFFFFFF) >>> 0;
  }

  var view = document.getElementById("judgment-view");
  if (view) {
    var ctx = {};
    try { ctx = JSON.parse(view.getAttribute("data-context") || "{}"); } catch (e) { ctx = {}; }
    var show = function (payload) {
      renderJudgment(view, payload, ctx);
      showHash();
      if (location.hash.indexOf("#mark-") === 0) { pulse(location.hash.slice(6)); }
    };
    var embedded = view.getAttribute("data-judgment");
    if (embedded) {
      show(JSON.parse(embedded));
    } else {
      var id = new URLSearchParams(location.search).get("id");
      var base = view.getAttribute("data-base") || "";
      var files = parseInt(view.getAttribute("data-files") || "", 10);
      if (!id || !/^[A-Za-z0-9-]{1,64}$/.test(id) || !/^[a-z]+\/$/.test(base) || !(files >= 1)) {
        notFound(view, id);
      } else {
        var script = document.createElement("script");
        script.src = base + (crc32(id) % files) + ".js";
        script.onload = function () {
          var all = window.EvaluatorJudgments;
          if (all && Object.prototype.hasOwnProperty.call(all, id)) { show(all[id]); } else { notFound(view, id); }
        };
        script.onerror = function () { notFound(view, id); };
        document.body.appendChild(script);
      }
    }
  } else {
    wireQuotes(document);
    if (location.hash.indexOf("#mark-") === 0) { pulse(location.hash.slice(6)); }
  }
  /* back and forward between quotes, or a quote's link opened on the same page */
  window.addEventListener("hashchange", function () {
    if (location.hash.indexOf("#mark-") === 0) { pulse(location.hash.slice(6)); }
  });
})();
