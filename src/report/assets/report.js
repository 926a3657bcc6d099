// The report pages' gallery of overlays and table of rows, built from the rows in #qfae-data
// (scores.csv as written) and shown a page at a time, so a test set of any size opens quickly.
// Text goes in with textContent only: a file name is never read as markup.
(function () {
  'use strict';
  var source = document.getElementById('qfae-data');
  if (!source) return;
  var data = JSON.parse(source.textContent);
  var at = {};
  data.columns.forEach(function (c, i) { at[c] = i; });
  var rows = data.rows;

  function cell(r, name) { return at[name] === undefined ? '' : r[at[name]]; }
  function fullPath(r) { return (data.prefix || '') + cell(r, 'path'); }
  function baseName(p) { var k = p.lastIndexOf('/'); return k < 0 ? p : p.slice(k + 1); }
  function asNumber(s) { return s === '' || s === undefined ? NaN : Number(s); }
  function href(rel) { return rel.split('/').map(encodeURIComponent).join('/'); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function shown(x) { return isFinite(x) ? String(Number(x.toPrecision(5))) : ''; }
  function matches(r, f) {
    var eq = f.equals || {};
    for (var k in eq) if (cell(r, k) !== eq[k]) return false;
    if (f.nonempty && cell(r, f.nonempty) === '') return false;
    return true;
  }
  // What the row is, as tags: its label, the decision and whether that was wrong.
  function tags(r) {
    var out = [], label = cell(r, 'label'), flagged = cell(r, 'anomalous');
    if (label === '1') out.push(['anomalous', 'anomalous']);
    if (label === '0') out.push(['normal', 'normal']);
    if (label === '0' && flagged === '1') out.push(['fp', 'false positive']);
    else if (label === '1' && flagged === '0') out.push(['fn', 'false negative']);
    else if (flagged === '1') out.push(['flagged', 'flagged']);
    if (cell(r, 'error') !== '') out.push(['error', 'error']);
    return out;
  }

  // prev / next and "page k of n" in `box`; calls show(page) on a change.
  function Pager(box, size, show) {
    var self = this;
    this.page = 0;
    this.total = 0;
    var prev = el('button', '', '◀ previous'), next = el('button', '', 'next ▶'), text = el('span');
    prev.type = next.type = 'button';
    prev.className = 'prev';
    next.className = 'next';
    prev.onclick = function () { if (self.page > 0) { self.page--; show(self.page); self.update(); } };
    next.onclick = function () {
      if (self.page + 1 < self.pages()) { self.page++; show(self.page); self.update(); }
    };
    box.appendChild(prev);
    box.appendChild(next);
    box.appendChild(text);
    this.pages = function () { return Math.max(1, Math.ceil(self.total / size)); };
    this.update = function () {
      prev.disabled = self.page === 0;
      next.disabled = self.page + 1 >= self.pages();
      text.textContent = ' page ' + (self.page + 1) + ' of ' + self.pages() + ' · ' + self.total +
          ' image' + (self.total === 1 ? '' : 's');
    };
  }

  var byScore = rows.map(function (r, i) { return i; });
  byScore.sort(function (a, b) {
    var x = asNumber(cell(rows[a], 'score')), y = asNumber(cell(rows[b], 'score'));
    if (isNaN(x)) return isNaN(y) ? a - b : 1;
    if (isNaN(y)) return -1;
    return y - x || a - b;
  });

  function setupGallery() {
    var box = document.getElementById('gallery');
    if (!box) return;
    var size = data.gallery_page || 48, chosen = [], filterButtons = [];
    var pager = new Pager(document.getElementById('gallery-pager'), size, draw);
    function card(i) {
      var r = rows[i], path = fullPath(r), fig = el('figure', 'card'), overlay = cell(r, 'overlay');
      fig.setAttribute('data-path', path);
      fig.setAttribute('data-row', String(i));
      if (overlay !== '') {
        var a = el('a'), img = el('img');
        a.href = href(overlay);
        a.target = '_blank';
        a.rel = 'noopener';
        img.loading = 'lazy';
        img.src = href(overlay);
        img.alt = 'overlay of ' + baseName(path);
        a.appendChild(img);
        fig.appendChild(a);
      } else {
        fig.appendChild(el('div', 'no-overlay', 'no overlay'));
      }
      var cap = el('figcaption'), name = el('div', 'name', baseName(path));
      name.title = path;
      cap.appendChild(name);
      var line = el('div', '', 'score ' + shown(asNumber(cell(r, 'score'))));
      var dice = asNumber(cell(r, 'dice'));
      if (isFinite(dice)) line.appendChild(document.createTextNode(' · Dice ' + dice.toFixed(3)));
      cap.appendChild(line);
      var t = el('div');
      tags(r).forEach(function (x) { t.appendChild(el('span', 'tag ' + x[0], x[1])); });
      cap.appendChild(t);
      if (cell(r, 'error') !== '') cap.appendChild(el('div', 'error-text', cell(r, 'error')));
      fig.appendChild(cap);
      return fig;
    }
    function draw(page) {
      box.textContent = '';
      var frag = document.createDocumentFragment();
      chosen.slice(page * size, (page + 1) * size).forEach(function (i) { frag.appendChild(card(i)); });
      box.appendChild(frag);
    }
    function choose(f, button) {
      chosen = byScore.filter(function (i) { return matches(rows[i], f); });
      filterButtons.forEach(function (b) { b.setAttribute('aria-pressed', String(b === button)); });
      box.setAttribute('data-filter', f.id);
      pager.page = 0;
      pager.total = chosen.length;
      pager.update();
      draw(0);
    }
    var bar = document.getElementById('gallery-filters');
    data.filters.forEach(function (f, k) {
      var n = rows.filter(function (r) { return matches(r, f); }).length;
      var b = el('button', '', f.title + ' (' + n + ')');
      b.type = 'button';
      b.setAttribute('data-filter', f.id);
      if (f.disabled) { b.disabled = true; b.title = f.disabled; }
      b.onclick = function () { choose(f, b); };
      filterButtons.push(b);
      bar.appendChild(b);
      if (k === 0) choose(f, b);
    });
  }

  function setupTable() {
    var table = document.getElementById('rows-table');
    if (!table) return;
    var size = data.table_page || 100, order = rows.map(function (r, i) { return i; });
    var sortColumn = -1, ascending = true;
    var numeric = data.columns.map(function (c, k) {
      var any = false;
      for (var i = 0; i < rows.length; i++) {
        var v = rows[i][k];
        if (v === '') continue;
        if (isNaN(Number(v))) return false;
        any = true;
      }
      return any;
    });
    var body = table.querySelector('tbody'), head = el('tr');
    var pager = new Pager(document.getElementById('table-pager'), size, draw);
    data.columns.forEach(function (c, k) {
      var th = el('th', numeric[k] ? 'num' : ''), b = el('button', '', c);
      b.type = 'button';
      b.title = 'sort by ' + c;
      b.onclick = function () { sortBy(k); };
      th.appendChild(b);
      head.appendChild(th);
    });
    table.querySelector('thead').appendChild(head);
    function sortBy(k) {
      ascending = sortColumn === k ? !ascending : !numeric[k] || data.columns[k] !== 'score';
      sortColumn = k;
      order.sort(function (a, b) {
        var x = rows[a][k], y = rows[b][k], d;
        if (numeric[k]) {
          var p = asNumber(x), q = asNumber(y);
          if (isNaN(p) || isNaN(q)) return isNaN(p) === isNaN(q) ? a - b : (isNaN(p) ? 1 : -1);
          d = p - q;
        } else {
          d = x < y ? -1 : x > y ? 1 : 0;
        }
        return (ascending ? d : -d) || a - b;
      });
      head.querySelectorAll('th').forEach(function (th, j) {
        th.setAttribute('aria-sort', j === k ? (ascending ? 'ascending' : 'descending') : 'none');
      });
      pager.page = 0;
      pager.update();
      draw(0);
    }
    function draw(page) {
      body.textContent = '';
      var frag = document.createDocumentFragment();
      order.slice(page * size, (page + 1) * size).forEach(function (i) {
        var tr = el('tr');
        tr.setAttribute('data-row', String(i));
        data.columns.forEach(function (c, k) {
          var v = k === at.path ? fullPath(rows[i]) : rows[i][k];
          var td = el('td', numeric[k] ? 'num' : '');
          if (c === 'overlay' && v !== '') {
            var a = el('a', '', 'open');
            a.href = href(v);
            a.target = '_blank';
            a.rel = 'noopener';
            td.appendChild(a);
          } else {
            td.textContent = v;
          }
          tr.appendChild(td);
        });
        frag.appendChild(tr);
      });
      body.appendChild(frag);
    }
    pager.total = rows.length;
    pager.update();
    draw(0);
  }

  setupGallery();
  setupTable();
}());
