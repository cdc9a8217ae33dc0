/* evaluator report: draws the plotly charts from each .chart element's data-spec (JSON in an
   attribute, so the HTML parser decodes it and nothing in it can become markup), follows chart clicks
   to relative links only, and highlights the evidence a quote link points at. No network. */
(function () {
  "use strict";
  function isRelative(url) {
    return typeof url === "string" && url.length > 0 && !/^[a-zA-Z][a-zA-Z0-9+.\-]*:/.test(url) && url.indexOf("//") !== 0;
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
  document.querySelectorAll("a.quote[data-key]").forEach(function (a) {
    a.addEventListener("click", function () { pulse(a.getAttribute("data-key")); });
  });
  if (location.hash.indexOf("#mark-") === 0) { pulse(location.hash.slice(6)); }
})();
