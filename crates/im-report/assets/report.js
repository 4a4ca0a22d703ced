// image-manager report: graph highlighting and filters. The pages work without it; it only
// adds highlighting of a node's ancestors and descendants, and the name filters.
(function () {
  "use strict";

  function ids(node, attribute) {
    var text = node.getAttribute(attribute) || "";
    return text === "" ? [] : text.split(" ").map(Number);
  }

  function reach(nodes, start, attribute, into) {
    var stack = [start];
    while (stack.length > 0) {
      var next = ids(nodes[stack.pop()], attribute);
      for (var i = 0; i < next.length; i++) {
        if (!into[next[i]]) {
          into[next[i]] = true;
          stack.push(next[i]);
        }
      }
    }
  }

  function setUpGraph(svg) {
    var nodes = svg.querySelectorAll("a.node");
    var edges = svg.querySelectorAll("g.edges path");
    function clear() {
      svg.classList.remove("highlighting");
      for (var i = 0; i < nodes.length; i++) nodes[i].classList.remove("hl", "up", "down");
      for (var j = 0; j < edges.length; j++) edges[j].classList.remove("hl");
    }
    function highlight(index) {
      clear();
      var up = {}, down = {};
      reach(nodes, index, "data-parents", up);
      reach(nodes, index, "data-children", down);
      svg.classList.add("highlighting");
      nodes[index].classList.add("hl");
      for (var k in up) nodes[k].classList.add("hl", "up");
      for (var m in down) nodes[m].classList.add("hl", "down");
      up[index] = true;
      down[index] = true;
      for (var e = 0; e < edges.length; e++) {
        var from = Number(edges[e].getAttribute("data-from"));
        var to = Number(edges[e].getAttribute("data-to"));
        if ((up[from] && up[to]) || (down[from] && down[to])) edges[e].classList.add("hl");
      }
    }
    for (var i = 0; i < nodes.length; i++) {
      (function (index) {
        nodes[index].addEventListener("mouseenter", function () { highlight(index); });
        nodes[index].addEventListener("focus", function () { highlight(index); });
        nodes[index].addEventListener("mouseleave", clear);
        nodes[index].addEventListener("blur", clear);
      })(i);
    }
    return nodes;
  }

  function setUpGraphFilter(input, nodes, status) {
    input.hidden = false;
    input.parentNode.hidden = false;
    input.addEventListener("input", function () {
      var query = input.value.trim().toLowerCase();
      var shown = 0;
      for (var i = 0; i < nodes.length; i++) {
        var match = query === "" || nodes[i].getAttribute("data-name").indexOf(query) !== -1;
        nodes[i].classList.toggle("faded", !match);
        if (match) shown++;
      }
      if (status) status.textContent = query === "" ? "" : shown + " of " + nodes.length + " match";
    });
  }

  function setUpTableFilter(input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) return;
    var rows = table.querySelectorAll("tbody tr");
    var status = document.getElementById(input.id + "-status");
    input.parentNode.hidden = false;
    input.addEventListener("input", function () {
      var query = input.value.trim().toLowerCase();
      var shown = 0;
      for (var i = 0; i < rows.length; i++) {
        var match = query === "" || rows[i].textContent.toLowerCase().indexOf(query) !== -1;
        rows[i].hidden = !match;
        if (match) shown++;
      }
      if (status) status.textContent = query === "" ? "" : shown + " of " + rows.length + " rows match";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var graphs = document.querySelectorAll("figure.graph svg");
    for (var g = 0; g < graphs.length; g++) {
      var nodes = setUpGraph(graphs[g]);
      var input = document.getElementById("graph-filter");
      if (input && g === 0) setUpGraphFilter(input, nodes, document.getElementById("graph-filter-status"));
    }
    var filters = document.querySelectorAll("input[data-filter]");
    for (var f = 0; f < filters.length; f++) setUpTableFilter(filters[f]);
  });
})();
