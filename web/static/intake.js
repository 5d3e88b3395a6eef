/* The intake form's draft (受理 on a rural link). The form works without this script; with it:
   - everything typed is kept in the browser (localStorage) as it is typed, with the form's intake key;
     a reload — or a browser restarted after a crash — brings the draft back;
   - pressing 受理 records the moment the application was taken (accepted_at) once; while the link is
     down the submit is held, the page says so, and it goes out by itself when the link is back (or at
     the next load of the page). The server takes the recorded time as the acceptance (补录) and the
     intake key makes any repeat of the same submit return the first result, never a second case;
   - the receipt or notice page clears the draft it came from (data-draft-clear).
   - the ID number field says as it is typed whether the check digit is right. */
"use strict";
(function () {
  var PREFIX = "yicun:draft:";
  var WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], CHECK = "10X98765432";

  function store(key, value) {
    try { if (value === null) localStorage.removeItem(PREFIX + key); else localStorage.setItem(PREFIX + key, JSON.stringify(value)); }
    catch (e) { /* private mode or full: the form still works, only without a draft */ }
  }
  function load(key) {
    try { return JSON.parse(localStorage.getItem(PREFIX + key) || "null"); } catch (e) { return null; }
  }
  function snapshot(form) {
    var out = {fields: {}, checks: {}};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token" || el.type === "submit" || el.type === "button") return;
      if (el.type === "checkbox" || el.type === "radio") {
        if (el.checked) (out.checks[el.name] = out.checks[el.name] || []).push(el.value);
        else out.checks[el.name] = out.checks[el.name] || [];
      } else out.fields[el.name] = el.value;
    });
    return out;
  }
  function restore(form, draft) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "csrf_token") return;
      if (el.type === "checkbox" || el.type === "radio") {
        if (draft.checks && el.name in draft.checks) el.checked = draft.checks[el.name].indexOf(el.value) >= 0;
      } else if (draft.fields && el.name in draft.fields && el.type !== "submit" && el.type !== "button") {
        el.value = draft.fields[el.name];
      }
    });
  }
  function idProblem(v) {
    v = v.trim().toUpperCase();
    if (!v) return "";
    if (!/^[1-9][0-9]{16}[0-9X]$/.test(v)) return "bad";
    var sum = 0;
    for (var i = 0; i < 17; i++) sum += parseInt(v[i], 10) * WEIGHTS[i];
    return CHECK[sum % 11] === v[17] ? "ok" : "check";
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-draft-clear]").forEach(function (el) {
      var key = el.getAttribute("data-draft-clear"), draft = load(key);
      if (draft && draft.pending) store(key, null);
    });
    var form = document.querySelector("form[data-draft]");
    if (!form) return;
    var key = form.getAttribute("data-draft");
    var offline = document.querySelector("[data-offline-banner]");
    var restored = document.querySelector("[data-draft-banner]");
    var time = form.querySelector("[data-draft-time]");
    var refused = document.querySelector(".field-error, p.error");
    var draft = load(key);
    if (refused) {
      draft = null;  // the server's answer (with what was sent) is the truth now
    } else if (draft) {
      restore(form, draft);
      if (restored) restored.hidden = false;
    }
    function save(pending, action) {
      var d = snapshot(form);
      d.pending = !!pending;
      d.action = action || (draft && draft.action) || "accept";
      d.saved = new Date().toISOString();
      store(key, d);
      draft = d;
    }
    function send(action) {
      var button = form.querySelector('button[name="action"][value="' + action + '"]');
      if (form.requestSubmit && button) form.requestSubmit(button); else form.submit();
    }
    form.addEventListener("input", function () { save(draft && draft.pending); });
    form.addEventListener("change", function () { save(draft && draft.pending); });
    form.addEventListener("submit", function (ev) {
      var action = ev.submitter && ev.submitter.value || "accept";
      if (time && !time.value) time.value = new Date().toISOString();  // the moment it was taken
      save(true, action);
      if (!navigator.onLine) {
        ev.preventDefault();
        if (offline) offline.hidden = false;
        return;
      }
      form.querySelectorAll('button[type="submit"]').forEach(function (b) {
        setTimeout(function () { b.disabled = true; }, 0);  // one click is enough; a retry reuses the key
      });
    });
    window.addEventListener("offline", function () { if (offline) offline.hidden = false; });
    window.addEventListener("online", function () {
      if (draft && draft.pending) setTimeout(function () { if (navigator.onLine) send(draft.action); }, 1500);
      else if (offline) offline.hidden = true;
    });
    if (draft && draft.pending && !refused) {
      if (navigator.onLine) setTimeout(function () { send(draft.action); }, 300);
      else if (offline) offline.hidden = false;
    }
    var discard = document.querySelector("[data-draft-discard]");
    if (discard) discard.addEventListener("click", function () { store(key, null); window.location.reload(); });

    var id = form.querySelector("[data-idcard]"), hint = form.querySelector("[data-idcard-hint]");
    if (id && hint) {
      var check = function () {
        var p = idProblem(id.value);
        hint.hidden = !p || p === "ok";
        hint.textContent = p === "check" ? hint.getAttribute("data-check") || "校验位（最后一位）不对，请核对。"
          : "须为 18 位：17 位数字加最后 1 位数字或 X。";
        if (p === "bad" && id.value.trim().length < 18) hint.hidden = true;  // still typing
      };
      id.addEventListener("input", check);
      check();
    }
  });
})();
