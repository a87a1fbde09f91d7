// XL-Watch dashboard: the one hand-written script (no build step, no libraries).
// Each page's <body data-page> picks its part below. Changes go to the JSON API itself
// (the same validation as any client); HTML pieces come from /ui/fragments/ (the same
// templates as the first paint). Times are rendered in the camera's time zone.
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const WEEK_S = 6 * 86400;

  // ------------------------------------------------------------------ times

  function zoneParts(epoch, tz) {
    const opts = { weekday: "short", year: "numeric", month: "numeric", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
    let fmt;
    try {
      fmt = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: tz || "UTC" });
    } catch (_err) {
      fmt = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: "UTC" });
    }
    const out = {};
    for (const p of fmt.formatToParts(new Date(epoch * 1000))) out[p.type] = p.value;
    return out;
  }

  // "Tue 14:03:21"; "Tue 25 Nov 14:03:21" further than six days from now (as timefmt.py).
  function localTime(epoch, tz) {
    const p = zoneParts(epoch, tz);
    const hms = `${p.hour}:${p.minute}:${p.second}`;
    if (Math.abs(Date.now() / 1000 - epoch) > WEEK_S) {
      return `${p.weekday} ${Number(p.day)} ${MONTHS[Number(p.month) - 1]} ${hms}`;
    }
    return `${p.weekday} ${hms}`;
  }

  function relativeTime(epoch) {
    let delta = Date.now() / 1000 - epoch;
    const ahead = delta < 0;
    delta = Math.abs(delta);
    if (delta < 5) return "just now";
    let text = "";
    for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]]) {
      if (delta >= size) { text = `${Math.floor(delta / size)} ${unit}`; break; }
    }
    return ahead ? `in ${text}` : `${text} ago`;
  }

  function duration(seconds) {
    if (seconds == null) return "open";
    if (seconds < 60) return `${Math.round(seconds)} s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  }

  // The epoch seconds of a wall time "YYYY-MM-DDTHH:MM[:SS]" read in zone `tz`.
  function zonedToEpoch(text, tz) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(text || "");
    if (!m) return null;
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)) / 1000;
    let guess = wall;
    for (let i = 0; i < 2; i++) {
      const p = zoneParts(guess, tz);
      const seen = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) / 1000;
      guess += wall - seen;
    }
    return guess;
  }

  function epochToZoned(epoch, tz) {
    const p = zoneParts(epoch, tz);
    const pad = (v) => String(v).padStart(2, "0");
    return `${p.year}-${pad(p.month)}-${pad(p.day)}T${p.hour}:${p.minute}:${p.second}`;
  }

  function timeEl(epoch, tz, relative = true) {
    const t = document.createElement("time");
    t.dataset.epoch = String(epoch);
    t.dataset.tz = tz;
    if (relative) t.dataset.rel = "";
    t.dateTime = new Date(epoch * 1000).toISOString();
    renderTime(t);
    return t;
  }

  function renderTime(t) {
    const epoch = Number(t.dataset.epoch);
    t.textContent = localTime(epoch, t.dataset.tz);
    if (t.hasAttribute("data-rel")) {
      const ago = document.createElement("span");
      ago.className = "ago";
      ago.textContent = ` (${relativeTime(epoch)})`;
      t.append(ago);
    }
    t.title = `${new Date(epoch * 1000).toISOString()} · ${t.dataset.tz}`;
  }

  function renderTimes(root = document) {
    for (const t of $$("time[data-epoch]", root)) renderTime(t);
  }

  // ------------------------------------------------------------------ HTTP

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.code = (body && body.code) || `http_${status}`;
      this.field = (body && body.field) || null;
      this.details = (body && body.details) || null;
    }
  }

  function toLogin() {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }

  async function api(method, url, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(url, opts);
    if (resp.status === 401) { toLogin(); throw new ApiError(401, { message: "logged out" }); }
    let data = null;
    if (resp.status !== 204) {
      try { data = await resp.json(); } catch (_err) { data = null; }
    }
    if (!resp.ok) throw new ApiError(resp.status, data && data.error);
    return { data, headers: resp.headers };
  }

  async function fragment(url) {
    const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (resp.status === 401) { toLogin(); throw new ApiError(401, { message: "logged out" }); }
    if (!resp.ok) throw new ApiError(resp.status, { message: `HTTP ${resp.status}` });
    return resp.text();
  }

  function parseHtml(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    return Array.from(tpl.content.children);
  }

  // ------------------------------------------------------------------ swapping fragments

  const served = new WeakMap(); // element -> the HTML the server sent for it
  const keyOf = (el) => el.dataset.camera || el.dataset.alertId || null;

  function remember(container) {
    for (const el of container.children) served.set(el, el.outerHTML);
  }

  // Replace what changed, keyed by camera/alert; never under the keyboard's focus and
  // never closing an open <details>.
  function morph(container, html) {
    const next = parseHtml(html);
    const now = Array.from(container.children);
    const sameKeys = next.length === now.length &&
      next.every((el, i) => keyOf(el) !== null && keyOf(el) === keyOf(now[i]));
    const busy = (el) => el.contains(document.activeElement) ||
      (el.matches("details") ? el.open : $$("details[open]", el).length > 0);
    if (!sameKeys) {
      if (now.some(busy)) return;
      for (const el of next) served.set(el, el.outerHTML);
      container.replaceChildren(...next);
      renderTimes(container);
      return;
    }
    next.forEach((el, i) => {
      const html2 = el.outerHTML;
      if (served.get(now[i]) === html2 || busy(now[i])) return;
      served.set(el, html2);
      now[i].replaceWith(el);
      renderTimes(el);
    });
  }

  function poll(container, onDone) {
    const url = container.dataset.refresh;
    const every = Number(container.dataset.interval || 5000);
    remember(container);
    const tick = async () => {
      try {
        morph(container, await fragment(url));
        if (onDone) onDone(null);
      } catch (err) {
        if (onDone) onDone(err);
      }
      setTimeout(tick, every);
    };
    setTimeout(tick, every);
  }

  // ------------------------------------------------------------------ cameras

  function initCameras() {
    const grid = $("#grid");
    const status = $("#grid-status");
    poll(grid, (err) => {
      status.textContent = err ? `Refresh failed: ${err.message}` :
        `Updated ${localTime(Date.now() / 1000, Intl.DateTimeFormat().resolvedOptions().timeZone)}`;
    });
  }

  // ------------------------------------------------------------------ alerts

  function initAlerts() {
    const list = $("#alerts");
    const status = $("#live-status");
    const camera = list.dataset.camera;
    remember(list);
    const url = new URL("/alerts/stream", location.origin);
    url.searchParams.set("after_id", list.dataset.after || "0");
    if (camera) url.searchParams.set("camera", camera);
    const source = new EventSource(url);
    source.addEventListener("open", () => { status.textContent = "Live: new alerts appear at the top."; });
    source.addEventListener("error", () => {
      status.textContent = source.readyState === EventSource.CLOSED ?
        "Live feed closed; reload the page." : "Live feed reconnecting…";
    });
    source.addEventListener("alert", async (ev) => {
      const alert = JSON.parse(ev.data);
      if ($(`[data-alert-id="${alert.alert_id}"]`, list)) return;
      try {
        const [item] = parseHtml(await fragment(`/ui/fragments/alerts/${alert.alert_id}`));
        const empty = $("#no-alerts", list);
        if (empty) empty.remove();
        item.classList.add("fresh");
        list.prepend(item);
        renderTimes(item);
      } catch (err) {
        status.textContent = `Could not show alert ${alert.alert_id}: ${err.message}`;
      }
    });
    window.addEventListener("pagehide", () => source.close());
    list.addEventListener("click", async (ev) => {
      const ack = ev.target.closest("button[data-ack]");
      const more = ev.target.closest("button.more");
      if (ack) {
        ack.disabled = true;
        try {
          await api("POST", `/alerts/${ack.dataset.ack}/ack`);
          const li = ack.closest("li");
          const [item] = parseHtml(await fragment(`/ui/fragments/alerts/${ack.dataset.ack}`));
          item.tabIndex = -1;
          li.replaceWith(item);
          renderTimes(item);
          item.focus();
        } catch (err) {
          ack.disabled = false;
          status.textContent = `Acknowledge failed: ${err.message}`;
        }
      } else if (more) {
        const q = new URLSearchParams({ before: more.dataset.before });
        if (camera) q.set("camera", camera);
        try {
          const items = parseHtml(await fragment(`/ui/fragments/alerts?${q}`));
          more.closest("li").remove();
          list.append(...items);
          renderTimes(list);
        } catch (err) {
          status.textContent = `Could not load older alerts: ${err.message}`;
        }
      }
    });
  }

  // ------------------------------------------------------------------ admin

  const FIELDS = ["name", "url", "fps", "backend"];

  function fieldErrors(err) {
    // {field: message} from the API's one error shape
    const out = {};
    for (const d of err.details || []) {
      const loc = (d.loc || []).filter((p) => p !== "body");
      const field = String(loc[0] || "form");
      const shown = d.input === null || d.input === undefined || typeof d.input === "object" ?
        "" : `; got ${JSON.stringify(d.input)}`;
      out[field] = out[field] || `${d.msg}${shown}`;
    }
    if (!err.details) out[err.field || "form"] = err.message;
    return out;
  }

  function showErrors(form, errors) {
    for (const p of $$(".field-error", form)) { p.hidden = true; p.textContent = ""; }
    for (const input of $$("[aria-invalid]", form)) input.removeAttribute("aria-invalid");
    for (const [field, message] of Object.entries(errors)) {
      const key = FIELDS.includes(field) ? field : "form";
      const p = $(`#err-${key}`, form);
      p.textContent = message;
      p.hidden = false;
      const input = form.elements[key];
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }

  function numberOrText(value) {
    const n = Number(value);
    return value.trim() !== "" && Number.isFinite(n) ? n : value;
  }

  async function refreshAdminCameras() {
    const body = $("#admin-cameras");
    body.replaceChildren(...parseHtml(`<table><tbody>${await fragment("/ui/fragments/admin-cameras")}</tbody></table>`)[0].tBodies[0].children);
  }

  function initAdmin() {
    const form = $("#add-camera");
    const done = $("#add-done");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      done.textContent = "";
      const body = { name: form.elements.name.value.trim(), url: form.elements.url.value.trim() };
      if (form.elements.fps.value.trim() !== "") body.fps = numberOrText(form.elements.fps.value);
      if (form.elements.backend.value) body.backend = form.elements.backend.value;
      try {
        const { data } = await api("POST", "/cameras", body);
        showErrors(form, {});
        form.reset();
        done.textContent = `Added ${data.name} (${data.url}, ${data.fps} fps).`;
        await refreshAdminCameras();
      } catch (err) {
        if (err.status === 401) return;
        showErrors(form, fieldErrors(err));
        const first = $("[aria-invalid=true]", form);
        if (first) first.focus();
      }
    });
    const table = $("#admin-cameras");
    const rowError = (tr, message) => {
      const p = $(".field-error", tr);
      p.textContent = message || "";
      p.hidden = !message;
    };
    const patch = async (tr, body) => {
      try {
        await api("PATCH", `/cameras/${encodeURIComponent(tr.dataset.camera)}`, body);
        rowError(tr, "");
        await refreshAdminCameras();
        const again = $(`tr[data-camera="${tr.dataset.camera}"] .save`, table);
        if (again) again.focus();
      } catch (err) {
        const errors = fieldErrors(err);
        rowError(tr, Object.entries(errors).map(([f, m]) => `${f}: ${m}`).join("; "));
      }
    };
    table.addEventListener("change", (ev) => {
      if (ev.target.matches(".edit-enabled")) {
        patch(ev.target.closest("tr"), { enabled: ev.target.checked });
      }
    });
    table.addEventListener("click", async (ev) => {
      const tr = ev.target.closest("tr");
      if (!tr) return;
      if (ev.target.matches(".save")) {
        const body = { fps: numberOrText($(".edit-fps", tr).value) };
        const backend = $(".edit-backend", tr).value;
        if (backend) body.backend = backend;
        patch(tr, body);
      } else if (ev.target.matches(".remove")) {
        const button = ev.target;
        if (button.dataset.armed !== "1") {
          button.dataset.armed = "1";
          button.textContent = "Confirm remove";
          setTimeout(() => { button.dataset.armed = ""; button.textContent = "Remove"; }, 4000);
          return;
        }
        try {
          await api("DELETE", `/cameras/${encodeURIComponent(tr.dataset.camera)}`);
          await refreshAdminCameras();
          form.elements.name.focus();
        } catch (err) {
          rowError(tr, err.message);
        }
      }
    });
    const health = $("#health");
    poll(health);
  }

  // ------------------------------------------------------------------ ask

  function intervalLabel(iv, tz) {
    return `${localTime(iv.start, tz)} – ${localTime(iv.end, tz).split(" ").pop()} · ` +
      `${iv.label} · ${Math.round(iv.confidence * 100)}%`;
  }

  function initAsk() {
    const form = $("#ask-form");
    const select = $("#ask-camera");
    const question = $("#ask-question");
    const error = $("#ask-error");
    const answers = $("#answers");
    const moment = $("#moment");
    const tzOf = (camera) => {
      const opt = $$("option", select).find((o) => o.value === camera);
      return (opt && opt.dataset.tz) || "UTC";
    };
    const show = (button, camera, iv) => {
      for (const b of $$("button.moment-btn[aria-pressed=true]")) b.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-pressed", "true");
      const img = $("#moment-img");
      moment.hidden = false;
      if (iv.thumbnail_url) {
        img.hidden = false;
        img.src = iv.thumbnail_url;
        img.alt = `${camera} at ${localTime(iv.start, tzOf(camera))}`;
      } else {
        img.hidden = true;
        img.removeAttribute("src");
      }
      const clip = $("#moment-clip");
      clip.hidden = !iv.clip_url;  // only cameras that record have clips
      if (iv.clip_url) clip.href = iv.clip_url; else clip.removeAttribute("href");
      $("#moment-text").textContent = `${camera} · ${intervalLabel(iv, tzOf(camera))}` +
        ` · t=${iv.t_start.toFixed(1)}–${iv.t_end.toFixed(1)} s` +
        (iv.thumbnail_url ? "" : " · no image for this moment");
    };
    const render = (camera, result, roundTripMs) => {
      const block = document.createElement("article");
      block.className = "panel answer";
      const head = document.createElement("h2");
      head.textContent = camera;
      block.append(head);
      if (result instanceof Error) {
        const p = document.createElement("p");
        p.className = "error-text";
        p.textContent = result.message;
        block.append(p);
        return block;
      }
      const meta = document.createElement("p");
      meta.className = "muted latency";
      meta.textContent = `${result.backend} backend · answered in ${Math.round(result.latency_ms)} ms` +
        ` (${Math.round(roundTripMs)} ms round trip)`;
      const text = document.createElement("p");
      text.className = "answer-text";
      text.textContent = result.text;
      block.append(meta, text);
      if (result.intervals.length) {
        const list = document.createElement("ul");
        list.className = "moments";
        list.setAttribute("aria-label", `Moments on ${camera}`);
        for (const iv of result.intervals) {
          const li = document.createElement("li");
          const b = document.createElement("button");
          b.type = "button";
          b.className = "moment-btn";
          b.setAttribute("aria-pressed", "false");
          b.textContent = intervalLabel(iv, tzOf(camera));
          b.addEventListener("click", () => show(b, camera, iv));
          li.append(b);
          list.append(li);
        }
        block.append(list);
      }
      return block;
    };
    for (const chip of $$(".chip", form)) {
      chip.addEventListener("click", () => { question.value = chip.textContent; question.focus(); });
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.hidden = true;
      const cameras = select.value ? [select.value] :
        $$("option", select).map((o) => o.value).filter(Boolean);
      if (!cameras.length) {
        error.textContent = "No cameras yet: add one on the Admin page.";
        error.hidden = false;
        return;
      }
      const submit = $("#ask-submit");
      submit.disabled = true;
      submit.textContent = "Asking…";
      answers.replaceChildren();
      moment.hidden = true;
      const results = await Promise.all(cameras.map(async (camera) => {
        const started = performance.now();
        try {
          const { data } = await api("POST", "/ask", { camera, question: question.value });
          return [camera, data, performance.now() - started];
        } catch (err) {
          return [camera, err, performance.now() - started];
        }
      }));
      submit.disabled = false;
      submit.textContent = "Ask";
      const refused = results.find(([, r]) => r instanceof ApiError && r.field === "question");
      if (refused) {
        error.textContent = refused[1].message;
        error.hidden = false;
        question.setAttribute("aria-invalid", "true");
        question.focus();
        return;
      }
      question.removeAttribute("aria-invalid");
      for (const [camera, result, ms] of results) answers.append(render(camera, result, ms));
    });
  }

  // ------------------------------------------------------------------ camera timeline

  const KIND_COLOURS = 6;

  // Fixed colours for the CV analysis's own kinds; any other kind by its name's hash.
  const KNOWN_KINDS = { person_enter: 0, person_leave: 1, motion: 2, crowd: 3, loitering: 4,
    line_cross: 5, tamper: 3, person: 0 };

  function kindClass(kind) {
    if (kind in KNOWN_KINDS) return `k${KNOWN_KINDS[kind]}`;
    let h = 0;
    for (const ch of kind) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return `k${h % KIND_COLOURS}`;
  }

  async function pages(url, cursorDone, maxPages = 5) {
    const out = [];
    let next = url;
    for (let i = 0; i < maxPages && next; i++) {
      const { data, headers } = await api("GET", next);
      out.push(...data);
      const before = headers.get("X-Next-Before");
      if (!before || (cursorDone && cursorDone(data))) break;
      const u = new URL(next, location.origin);
      u.searchParams.set("before", before);
      next = u.pathname + u.search;
    }
    return out;
  }

  const TICKS = [60, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400];

  function initCamera() {
    const view = $("#timeline-view");
    const camera = view.dataset.camera;
    const tz = view.dataset.tz;
    const state = { span: 86400, until: Date.now() / 1000, follow: true, events: [], alerts: [],
      hidden: new Set() };
    const laneEvents = $("#lane-events");
    const laneAlerts = $("#lane-alerts");
    const axis = $("#tl-axis");
    const pop = $("#tl-pop");
    const detail = $("#tl-detail");
    const kinds = $("#tl-kinds");
    const range = $("#tl-range");

    const since = () => state.until - state.span;
    const pct = (t) => Math.min(100, Math.max(0, ((t - since()) / state.span) * 100));

    const describe = (item) => item.alert_id ?
      `alert ${item.rule}: ${item.message} at ${localTime(item.wall_time, tz)}` :
      `${item.kind} at ${localTime(item.wall_start, tz)}, ${duration(
        item.wall_end == null ? null : item.wall_end - item.wall_start)}`;

    const card = (item, big) => {
      const box = document.createElement("div");
      const url = item.thumbnail_url;
      if (url) {
        const img = document.createElement("img");
        img.src = url;
        img.alt = describe(item);
        img.width = big ? 320 : 160;
        img.height = big ? 240 : 120;
        box.append(img);
      }
      const p = document.createElement("p");
      p.textContent = describe(item);
      box.append(p);
      return box;
    };

    const hidePop = () => { pop.hidden = true; pop.replaceChildren(); };
    const showPop = (mark, item) => {
      pop.replaceChildren(card(item, false));
      pop.hidden = false;
      const box = view.getBoundingClientRect();
      const r = mark.getBoundingClientRect();
      const left = Math.min(Math.max(0, r.left - box.left - 80), box.width - 180);
      pop.style.left = `${left}px`;
      pop.style.top = `${r.bottom - box.top + 6}px`;
    };
    const pin = (item) => {
      detail.replaceChildren(card(item, true));
      detail.classList.add("shown");
    };

    const makeMark = (item, start, end, cls, row) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = `mark ${cls}`;
      b.style.left = `${pct(start)}%`;
      b.style.width = `${Math.max(0, pct(end) - pct(start))}%`;
      b.style.top = `${4 + row * 14}px`;
      b.setAttribute("aria-label", describe(item));
      b.addEventListener("mouseenter", () => showPop(b, item));
      b.addEventListener("mouseleave", hidePop);
      b.addEventListener("focus", () => showPop(b, item));
      b.addEventListener("blur", hidePop);
      b.addEventListener("click", () => pin(item));
      return b;
    };

    const drawAxis = () => {
      const width = Math.max(1, axis.getBoundingClientRect().width);
      const want = width < 500 ? 3 : 6;
      const step = TICKS.find((s) => state.span / s <= want) || TICKS[TICKS.length - 1];
      const offset = (epoch) => {
        const p = zoneParts(epoch, tz);
        return (Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) / 1000) - epoch;
      };
      const off = offset(state.until);
      let t = Math.ceil((since() + off) / step) * step - off;
      const ticks = [];
      for (; t <= state.until; t += step) {
        const p = zoneParts(t, tz);
        const tick = document.createElement("span");
        tick.className = "tick";
        tick.style.left = `${pct(t)}%`;
        tick.textContent = step >= 86400 ? `${p.weekday} ${Number(p.day)}` :
          (p.hour === "00" && p.minute === "00" ? `${p.weekday} 00:00` : `${p.hour}:${p.minute}`);
        ticks.push(tick);
      }
      axis.replaceChildren(...ticks);
    };

    const draw = () => {
      const now = Date.now() / 1000;
      hidePop();
      $("#tl-window").textContent = `${localTime(since(), tz)} → ${localTime(state.until, tz)}` +
        ` (${tz})${state.follow ? " · following now" : ""}`;
      const shown = state.events.filter((e) => !state.hidden.has(e.kind) &&
        e.wall_start <= state.until && (e.wall_end == null || e.wall_end >= since()));
      const rows = [];
      const minSpan = state.span * 0.01;
      const marks = shown.slice().sort((a, b) => a.wall_start - b.wall_start).map((e) => {
        const end = e.wall_end == null ? now : e.wall_end;
        let row = rows.findIndex((r) => r <= e.wall_start);
        if (row < 0) { row = rows.length < 4 ? rows.length : rows.indexOf(Math.min(...rows)); }
        rows[row] = Math.max(end, e.wall_start + minSpan);
        return makeMark(e, e.wall_start, end, `ev ${kindClass(e.kind)}`, row);
      });
      laneEvents.style.height = `${Math.max(1, rows.length) * 14 + 10}px`;
      laneEvents.replaceChildren(...marks);
      const alerts = state.hidden.has("__alerts") ? [] :
        state.alerts.filter((a) => a.wall_time >= since() && a.wall_time <= state.until);
      laneAlerts.replaceChildren(
        ...alerts.map((a) => makeMark(a, a.wall_time, a.wall_time, "al", 0)));
      drawAxis();
      const list = $("#tl-list");
      const items = shown.slice(0, 200).map((e) => {
        const li = document.createElement("li");
        const b = document.createElement("button");
        b.type = "button";
        b.className = "link";
        b.textContent = `${e.kind}`;
        b.addEventListener("click", () => pin(e));
        li.append(timeEl(e.wall_start, tz), " ", b, ` · ${duration(
          e.wall_end == null ? null : e.wall_end - e.wall_start)}`);
        return li;
      });
      list.replaceChildren(...items);
      $("#tl-count").textContent = `(${shown.length}${shown.length > 200 ? ", first 200 listed" : ""})`;
    };

    const syncKinds = () => {
      const have = new Set($$("input", kinds).map((i) => i.value));
      const found = [...new Set(state.events.map((e) => e.kind))].sort();
      for (const kind of found) {
        if (have.has(kind)) continue;
        const label = document.createElement("label");
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = kind;
        box.checked = !state.hidden.has(kind);
        const swatch = document.createElement("span");
        swatch.className = `swatch ${kindClass(kind)}`;
        label.append(box, swatch, ` ${kind}`);
        kinds.append(label);
      }
    };

    let loading = null;
    const load = async () => {
      if (state.follow) state.until = Date.now() / 1000;
      const q = new URLSearchParams({ camera, since: String(since()), until: String(state.until), limit: "1000" });
      const aq = new URLSearchParams({ camera, limit: "500" });
      const from = since();
      try {
        const [events, alerts] = await Promise.all([
          pages(`/events?${q}`),
          pages(`/alerts?${aq}`, (page) => page.length && page[page.length - 1].wall_time < from),
        ]);
        state.events = events;
        state.alerts = alerts;
        syncKinds();
        draw();
      } catch (err) {
        $("#tl-window").textContent = `Could not load the timeline: ${err.message}`;
      }
    };
    const reload = () => { loading = load(); return loading; };

    kinds.addEventListener("change", (ev) => {
      const box = ev.target;
      if (box.checked) state.hidden.delete(box.value); else state.hidden.add(box.value);
      draw();
    });
    range.addEventListener("change", () => {
      const custom = range.value === "custom";
      $("#tl-custom").hidden = !custom;
      if (custom) {
        $("#tl-from").value = epochToZoned(since(), tz);
        $("#tl-to").value = epochToZoned(state.until, tz);
        return;
      }
      state.span = Number(range.value);
      state.follow = true;
      reload();
    });
    $("#tl-apply").addEventListener("click", () => {
      const a = zonedToEpoch($("#tl-from").value, tz);
      const b = zonedToEpoch($("#tl-to").value, tz);
      if (a == null || b == null || b <= a) {
        $("#tl-window").textContent = "until: must be after from";
        return;
      }
      state.span = b - a;
      state.until = b;
      state.follow = false;
      reload();
    });
    const zoom = (factor) => {
      const centre = state.until - state.span / 2;
      state.span = Math.min(30 * 86400, Math.max(60, state.span * factor));
      state.until = centre + state.span / 2;
      state.follow = state.follow && factor > 1;
      reload();
    };
    const shift = (by) => {
      state.until += by * state.span;
      state.follow = false;
      reload();
    };
    $("#tl-zoom-in").addEventListener("click", () => zoom(0.5));
    $("#tl-zoom-out").addEventListener("click", () => zoom(2));
    $("#tl-earlier").addEventListener("click", () => shift(-0.5));
    $("#tl-later").addEventListener("click", () => shift(0.5));
    $("#tl-now").addEventListener("click", () => { state.follow = true; reload(); });
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") hidePop(); });
    window.addEventListener("resize", () => drawAxis());
    reload();
    setInterval(() => { if (state.follow) reload(); }, 10000);
  }

  // ------------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", () => {
    renderTimes();
    setInterval(() => renderTimes(), 15000);
    const page = document.body.dataset.page;
    const init = { cameras: initCameras, alerts: initAlerts, admin: initAdmin, ask: initAsk,
      camera: initCamera }[page === "cameras" && $("#timeline-view") ? "camera" : page];
    if (init) init();
  });
})();
