// KidSafe console: progressive enhancement only; every page works without it.
// A search box above long toggle lists (the 85 services) filters them as you type.
document.querySelectorAll('[data-filter]').forEach(function (box) {
  var list = document.getElementById(box.getAttribute('data-filter'));
  if (!list) { return; }
  box.classList.remove('hidden');
  box.querySelector('input').addEventListener('input', function (e) {
    var q = e.target.value.toLowerCase();
    list.querySelectorAll('label').forEach(function (l) {
      l.classList.toggle('hidden', q !== '' && l.textContent.toLowerCase().indexOf(q) < 0);
    });
    // Folded groups open while a search finds something in them.
    list.querySelectorAll('details').forEach(function (d) {
      if (q !== '') { d.open = d.querySelector('label:not(.hidden)') !== null; }
    });
  });
});
