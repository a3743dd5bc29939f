// structx report: the interactions. Pages read without it; it never writes markup, only classes and text.
(function () {
  "use strict";
  var doc = document;
  function all(selector, root) {
    return Array.prototype.slice.call((root || doc).querySelectorAll(selector));
  }

  // Index: filter the articles by record type and by "has problems".
  var table = doc.getElementById("articles");
  var filters = doc.getElementById("filters");
  if (table && filters) {
    var type = doc.getElementById("filter-type");
    var problems = doc.getElementById("filter-problems");
    var shown = doc.getElementById("shown");
    var apply = function () {
      var rows = all("tbody tr", table);
      var count = 0;
      rows.forEach(function (row) {
        var types = (row.getAttribute("data-types") || "").split(" ");
        var visible = (!type.value || types.indexOf(type.value) >= 0) &&
          (!problems.checked || row.getAttribute("data-problems") === "yes");
        row.hidden = !visible;
        if (visible) { count += 1; }
      });
      shown.textContent = count + " of " + rows.length + " articles shown";
    };
    filters.hidden = false;
    type.addEventListener("change", apply);
    problems.addEventListener("change", apply);
    apply();
  }

  // Article: a card marks its spans; a highlight shows its records.
  var text = doc.getElementById("article-text");
  var records = doc.getElementById("records");
  if (!records) { return; }
  var selection = doc.getElementById("selection");

  function clear() {
    all("mark.hl.active").forEach(function (mark) { mark.classList.remove("active"); });
    all(".card.selected").forEach(function (card) { card.classList.remove("selected"); });
  }
  function marksOf(anchor) {
    return text ? all("mark.hl", text).filter(function (mark) {
      return mark.getAttribute("data-record") === anchor;
    }) : [];
  }
  function say(lead, cards) {
    selection.textContent = "";
    selection.appendChild(doc.createTextNode(lead));
    cards.forEach(function (card) {
      var link = doc.createElement("a");
      link.href = "#" + card.id;
      link.textContent = card.getAttribute("data-label");
      link.setAttribute("data-record", card.id);
      selection.appendChild(doc.createTextNode(" "));
      selection.appendChild(link);
    });
    var close = doc.createElement("button");
    close.className = "close";
    close.type = "button";
    close.title = "Close";
    close.textContent = "\u00d7";
    close.addEventListener("click", function () { selection.hidden = true; clear(); });
    selection.appendChild(close);
    selection.hidden = false;
  }
  function selectRecord(anchor, scrollText) {
    var card = doc.getElementById(anchor);
    if (!card || !card.classList.contains("card")) { return; }
    clear();
    card.classList.add("selected");
    var marks = marksOf(anchor);
    marks.forEach(function (mark) { mark.classList.add("active"); });
    var spans = {};
    marks.forEach(function (mark) { spans[mark.getAttribute("data-span")] = true; });
    var count = Object.keys(spans).length;
    say(card.getAttribute("data-label") + ": " + count + " evidence span" + (count === 1 ? "" : "s") +
      " marked in the text.", []);
    if (scrollText && marks.length) { marks[0].scrollIntoView({ block: "center" }); }
  }

  records.addEventListener("click", function (event) {
    var link = event.target.closest("a");
    if (link && link.hasAttribute("data-record")) {
      event.preventDefault();
      selectRecord(link.getAttribute("data-record"), true);
      return;
    }
    if (link || event.target.closest("button")) { return; }
    var card = event.target.closest(".card");
    if (card) { selectRecord(card.id, true); }
  });
  records.addEventListener("keydown", function (event) {
    var card = event.target.closest(".card");
    if (card && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      selectRecord(card.id, true);
    }
  });
  if (text) {
    text.addEventListener("click", function (event) {
      var mark = event.target.closest("mark.hl");
      if (!mark) { return; }
      var anchors = [];
      for (var node = mark; node && node !== text; node = node.parentElement) {
        if (node.matches("mark.hl") && anchors.indexOf(node.getAttribute("data-record")) < 0) {
          anchors.push(node.getAttribute("data-record"));
        }
      }
      clear();
      var cards = anchors.map(function (anchor) { return doc.getElementById(anchor); }).filter(Boolean);
      cards.forEach(function (card) {
        card.classList.add("selected");
        marksOf(card.id).forEach(function (m) { m.classList.add("active"); });
      });
      say("This passage is evidence for:", cards);
      if (cards.length) { cards[0].scrollIntoView({ block: "nearest" }); }
    });
  }
  if (/^#rec-[A-Za-z0-9-]+$/.test(location.hash)) {
    selectRecord(location.hash.slice(1), true);
  }
})();
