"use strict";
// The status page: polls /api/rounds (rendered by the server once per round) and updates the page in place.
// Everything that comes from the server goes into the page as text (textContent), never as HTML.
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const DOWN = new Set(["unhealthy", "timeout", "error"]); // drawn red, critical or not; degraded, starting amber
  const $ = (id) => document.getElementById(id);
  const cards = new Map(); // check name -> its card's parts, kept across polls
  let lastRound = -1, changedAt = Date.now(), failingSince = null, findingsKey = "", healsKey = "";
  let changesRound = -1, changesKey = "";

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function ms(value) {
    if (value === null || value === undefined) return "–";
    return value >= 10 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`;
  }

  function clock(iso) {
    return new Date(iso).toLocaleTimeString();
  }

  // Response time over the last rounds: a line where the check answered (the server leaves out the time of a
  // refused connection or a probe that gave up), a red bar for each round in which it was down, amber where it was
  // degraded or starting.
  function drawSpark(svg, points, slots) {
    const values = points.map((p) => p[2]).filter((v) => v !== null && v !== undefined);
    const top = Math.max(1, ...values);
    const x = (i) => (slots <= 1 ? 100 : ((i + slots - points.length) / (slots - 1)) * 100);
    const y = (v) => 28 - (v / top) * 25;
    const shapes = [];
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("class", "base");
    for (const [k, v] of Object.entries({ x1: 0, x2: 100, y1: 29, y2: 29 })) base.setAttribute(k, v);
    shapes.push(base);
    let run = [];
    const flush = () => {
      if (run.length) {
        const line = document.createElementNS(SVG, "polyline");
        line.setAttribute("points", (run.length === 1 ? [run[0], run[0]] : run).join(" "));
        shapes.push(line);
      }
      run = [];
    };
    points.forEach(([, status, value], i) => {
      if (status !== "healthy") {
        const bar = document.createElementNS(SVG, "line");
        bar.setAttribute("class", DOWN.has(status) ? "bad" : "warn");
        for (const [k, v] of Object.entries({ x1: x(i), x2: x(i), y1: 2, y2: 30 })) bar.setAttribute(k, v);
        shapes.push(bar);
      }
      if (value === null || value === undefined) flush();
      else run.push(`${x(i).toFixed(2)},${y(value).toFixed(2)}`);
    });
    flush();
    const title = document.createElementNS(SVG, "title");
    title.textContent = values.length
      ? `response time over the last ${points.length} rounds: ${ms(Math.min(...values))} to ${ms(Math.max(...values))}`
      : "no response time in the last rounds";
    shapes.push(title);
    svg.replaceChildren(...shapes);
  }

  function card(name, container) {
    let parts = cards.get(name);
    if (parts) return parts;
    parts = { card: el("article", "card"), name: el("span", "name"), state: el("span", "state"),
              sub: el("div", "sub"), time: el("div", "sub time"), note: el("div", "note"),
              spark: document.createElementNS(SVG, "svg") };
    parts.card.dataset.service = name;
    parts.spark.setAttribute("class", "spark");
    parts.spark.setAttribute("viewBox", "0 0 100 30");
    parts.spark.setAttribute("preserveAspectRatio", "none");
    const top = el("div", "top");
    top.append(parts.name, parts.state);
    parts.card.append(top, parts.sub, parts.time, parts.spark, parts.note);
    container.append(parts.card);
    cards.set(name, parts);
    return parts;
  }

  function backend(check) {
    const b = check.backend;
    if (!b) return "probed only";
    if (b.container) return `container ${b.container}: ${b.state}${b.engine_health ? "/" + b.engine_health : ""}`;
    return b.pids && b.pids.length ? `${b.state}, pid ${b.pids.join(", ")}` : b.state;
  }

  function showChecks(group, checks, history, slots) {
    const container = $(group);
    const names = Object.keys(checks);
    for (const name of names) {
      const check = checks[name];
      const parts = card(name, container);
      parts.card.dataset.severity = check.severity;
      parts.card.dataset.status = check.status;
      parts.name.textContent = check.display_name;
      parts.state.textContent = check.status;
      parts.sub.textContent = `${name} · ${check.address} · ${backend(check)}`;
      const points = history.map((h) => h.checks[name]).filter((p) => p);
      const answered = points.map((p) => p[2]).filter((v) => v !== null && v !== undefined);
      const latest = history.length ? history[history.length - 1].checks[name] : null; // this round's
      const now = latest ? latest[2] : null;
      parts.time.textContent = (now === null || now === undefined ? "no answer" : `now ${ms(now)}`) +
        (answered.length ? ` · highest ${ms(Math.max(...answered))} in the last ${points.length} rounds` : "");
      parts.note.textContent = check.error || "";
      drawSpark(parts.spark, points, slots);
    }
    for (const node of [...container.children]) {
      if (!names.includes(node.dataset.service)) {
        cards.delete(node.dataset.service);
        node.remove();
      }
    }
  }

  function copyButton(command) {
    const button = el("button", null, "copy");
    button.type = "button";
    button.title = "copy the command";
    button.addEventListener("click", () => {
      const done = () => { button.textContent = "copied"; setTimeout(() => { button.textContent = "copy"; }, 1500); };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(command).then(done, () => {});
      else {
        const range = document.createRange();
        range.selectNodeContents(button.previousSibling);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
      }
    });
    return button;
  }

  function showFindings(findings) {
    const key = JSON.stringify(findings);
    if (key === findingsKey) return; // unchanged: keep the page as it is (a selection, a copied command)
    findingsKey = key;
    $("findings-count").textContent = findings.length ? `(${findings.length})` : "";
    $("no-findings").hidden = findings.length > 0;
    $("findings").replaceChildren(...findings.map((f) => {
      const item = el("li", "finding");
      item.dataset.severity = f.severity;
      const what = el("div", "what");
      what.append(el("span", "tag", f.severity), `${f.subject}: ${f.message}`);
      item.append(what);
      for (const step of f.steps) {
        const row = el("div", "step");
        const command = el("div", "command");
        command.append(el("code", null, step.command), copyButton(step.command));
        row.append(el("div", "why", step.why), command);
        item.append(row);
      }
      return item;
    }));
  }

  // A host gauge: its name and value on one line, a disk's path on a line of its own below them (a long path
  // wraps there, never under the value), then the bar.
  function gauge(label, value, percent, severity, disk) {
    const box = el("div", "gauge");
    box.dataset.severity = severity;
    const text = el("div", "label");
    text.append(el("span", "what", label), el("span", "value", value));
    const bar = el("div", "bar");
    const fill = el("div", "fill");
    fill.style.width = `${Math.max(0, Math.min(100, percent))}%`;
    bar.append(fill);
    box.append(text);
    if (disk) {
      const paths = [disk.path, ...disk.other_paths];
      box.append(el("div", "path", disk.path));
      box.title = `${paths.join(", ")}: one file system, measured at ${disk.measured_path}`;
    }
    box.append(bar);
    return box;
  }

  function showHost(m) {
    const gib = (n) => `${(n / 2 ** 30).toFixed(1)} GiB`;
    const load = m.thresholds.load_per_cpu;
    $("host").replaceChildren(
      gauge(`CPU (${m.cpu_count})`, `${m.cpu_percent}%`, m.cpu_percent, m.severity.cpu_percent),
      gauge("Memory", `${m.memory_percent}% · ${gib(m.memory_available_bytes)} free`, m.memory_percent,
            m.severity.memory_percent),
      ...m.disks.map((d) => gauge("Disk", `${d.percent}% · ${gib(d.free_bytes)} free`, d.percent, d.severity, d)),
      gauge("Load per CPU", `${m.load_per_cpu}`, load ? (m.load_per_cpu / load.critical) * 100 : 0,
            m.severity.load_per_cpu));
  }

  function showHeals(data) {
    $("heal-section").hidden = !data.heal;
    const healing = $("healing");
    healing.hidden = !data.healing.length;
    healing.textContent = data.healing.length ? `Healing ${data.healing.join(", ")}: restarting…` : "";
    const key = JSON.stringify(data.heals);
    if (key === healsKey) return;
    healsKey = key;
    $("heals").replaceChildren(...[...data.heals].reverse().map((h) => {
      const item = el("li", "heal");
      item.dataset.level = h.level;
      item.append(el("span", "when", clock(h.time)), h.message);
      return item;
    }));
  }

  // The journal's last operations (tmt-ops history): who changed what, when, and how it ended.
  function who(w) {
    if (!w) return "?";
    return w.user + (w.sudo_user ? ` (sudo from ${w.sudo_user})` : "") + (w.ssh_client ? ` from ${w.ssh_client}` : "");
  }

  function showChanges(data) {
    const key = JSON.stringify(data);
    if (key === changesKey) return;
    changesKey = key;
    const none = $("no-changes");
    none.hidden = data.records.length > 0 && !data.error;
    none.textContent = data.error ? `The journal cannot be read: ${data.error}` :
      "No restart, stop, start, clean or heal on record yet.";
    $("changes").replaceChildren(...data.records.map((r) => {
      const item = el("li", "change");
      item.dataset.outcome = r.outcome;
      const when = r.started || r.ended;
      const took = typeof r.seconds === "number" ? ` in ${r.seconds} s` : "";
      item.append(el("span", "when", when ? new Date(when).toLocaleString() : "?"), el("span", "tag", r.outcome),
                  `${r.operation || "?"} of ${(r.services || []).join(", ") || "nothing"} by ${who(r.who)}${took}: ` +
                  `${r.last || ""}`);
      return item;
    }));
  }

  async function pollChanges(round) {
    if (round === changesRound) return; // read once per round, as the server does
    try {
      const answer = await fetch("/api/history", { cache: "no-store" });
      if (!answer.ok) return;
      showChanges(await answer.json());
      changesRound = round;
    } catch (error) {
      // the connection line says so already
    }
  }

  function show(data) {
    if (data.round !== lastRound) { lastRound = data.round; changedAt = Date.now(); }
    const doc = data.latest;
    if (!doc) return;
    const overall = $("overall");
    overall.dataset.severity = doc.overall_status;
    overall.textContent = doc.overall_status.toUpperCase();
    document.title = `${doc.overall_status.toUpperCase()} · TMT system health`;
    $("meta").textContent = `${doc.deployment_mode} mode · round ${data.round} at ${clock(doc.timestamp)} · ` +
      `a round every ${data.interval_seconds} s`;
    const slots = Math.max(data.history.length, 2);
    showChecks("services", doc.services, data.history, slots);
    showChecks("infrastructure", doc.infrastructure, data.history, slots);
    showFindings(doc.findings);
    showHost(doc.system_metrics);
    showHeals(data);
  }

  function showConnection(data) {
    const line = $("connection");
    let text = "";
    if (failingSince !== null) {
      text = `The server does not answer (since ${new Date(failingSince).toLocaleTimeString()}): ` +
             "what you see is its last answer.";
    } else if (data && data.round && Date.now() - changedAt > data.stale_after_seconds * 1000) {
      text = `No new round for ${Math.round((Date.now() - changedAt) / 1000)} s ` +
             `(one every ${data.interval_seconds} s): the monitor is busy or stuck.`;
    }
    line.hidden = !text;
    line.textContent = text;
    document.body.classList.toggle("offline", failingSince !== null);
  }

  let delay = 2000;
  async function poll() {
    let data = null;
    try {
      const answer = await fetch("/api/rounds", { cache: "no-store" });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      data = await answer.json();
      failingSince = null;
      show(data);
      pollChanges(data.round);
      delay = Math.min(5000, Math.max(1000, (data.interval_seconds * 1000) / 2));
    } catch (error) {
      if (failingSince === null) failingSince = Date.now();
    }
    showConnection(data);
    setTimeout(poll, delay);
  }

  poll();
})();
