// telemachy dashboard (docs/ui.md): while a run goes on, fetch the live
// part of the page every second and swap it in.  The server renders it (one
// renderer, one escaping, for the first load and every update); no inline
// script, no eval, nothing from another origin (Content-Security-Policy).
(function () {
  'use strict';
  var live = document.getElementById('live');
  if (!live) {
    return;
  }
  var src = live.getAttribute('data-src');
  var last = null;
  var busy = false;
  var timer = null;

  function ended() {
    var s = live.querySelector('[data-final]');
    return s !== null && s.getAttribute('data-final') === '1';
  }

  // <details> the reader opened or closed stay so.
  function openState() {
    var state = {};
    var all = live.querySelectorAll('details[id]');
    for (var i = 0; i < all.length; i++) {
      state[all[i].id] = all[i].open;
    }
    return state;
  }

  function restore(state) {
    Object.keys(state).forEach(function (id) {
      var d = document.getElementById(id);
      if (d) {
        d.open = state[id];
      }
    });
  }

  function tick() {
    if (busy) {
      return;
    }
    busy = true;
    fetch(src, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) {
        if (!r.ok) {
          throw new Error('HTTP ' + r.status);
        }
        return r.text();
      })
      .then(function (text) {
        if (text !== last) {
          var state = openState();
          live.innerHTML = text;
          last = text;
          restore(state);
        }
        live.removeAttribute('data-stale');
        if (ended() && timer !== null) {
          clearInterval(timer);
          timer = null;
        }
      })
      .catch(function () {
        live.setAttribute('data-stale', '1');
      })
      .then(function () {
        busy = false;
      });
  }

  if (src && !ended()) {
    timer = setInterval(tick, 1000);
  }
}());
