// The wallboard: agent tiles and campaign panels, kept current by the page's socket.
import { post, live, elapsed } from "/static/app.js";

const words = JSON.parse(document.getElementById("floor-i18n").textContent);
const zh = document.documentElement.lang.startsWith("zh");
const agents = new Map(); // id -> {node, since}
const LONG = { talking: 600, wrapup: 60, paused: 900 };

function pct(x) { return (100 * x).toFixed(2) + "%"; }

function agentNode(id) {
  let entry = agents.get(id);
  if (entry) return entry;
  let node = document.querySelector(`.wb-agent[data-agent="${CSS.escape(id)}"]`);
  if (!node) {
    node = document.createElement("li");
    node.className = "wb-agent";
    node.dataset.agent = id;
    document.getElementById("agents").append(node);
  }
  node.replaceChildren();
  const idEl = document.createElement("span"); idEl.className = "id"; idEl.textContent = id;
  const state = document.createElement("span"); state.className = "state";
  const time = document.createElement("span"); time.className = "time"; time.setAttribute("role", "timer");
  node.append(idEl, state, time);
  entry = { node, since: Date.now() };
  agents.set(id, entry);
  return entry;
}

function onAgent(m) {
  const entry = agentNode(m.agent_id);
  entry.node.dataset.state = m.state;
  entry.node.querySelector(".state").textContent = words[m.state] ?? m.state;
  entry.since = Date.now() - 1000 * m.seconds;
  entry.node.setAttribute("aria-label", `${m.agent_id} ${words[m.state] ?? m.state}`);
  tick();
}

function row(dl, label, value, over = false) {
  const dt = document.createElement("dt"); dt.textContent = label;
  const dd = document.createElement("dd"); dd.textContent = value;
  if (over) dd.classList.add("over");
  dl.append(dt, dd);
}

function onCampaign(m) {
  let node = document.querySelector(`.wb-camp[data-campaign="${CSS.escape(m.campaign)}"]`);
  if (!node) {
    node = document.createElement("article");
    node.className = "wb-camp";
    node.dataset.campaign = m.campaign;
    document.getElementById("campaigns").append(node);
  }
  node.replaceChildren();
  const h = document.createElement("h3"); h.textContent = m.campaign;
  const dl = document.createElement("dl");
  row(dl, words.agents, `${m.logged_in} (${words.ready} ${m.ready} · ${words.talking} ${m.talking} · ${words.wrapup} ${m.wrapping} · ${words.paused} ${m.paused})`);
  row(dl, words.ringing, String(m.lines));
  row(dl, words.waiting, String(m.waiting));
  row(dl, words.inbound, String(m.inbound_waiting));
  row(dl, words.abandon_today, `${pct(m.abandon_today)} / ${words.target} ${pct(m.target)}`, m.abandon_today >= m.target);
  row(dl, words.abandon_30d, `${pct(m.abandon_30d)} / ${words.target} ${pct(m.target)}`, m.abandon_30d >= m.target);
  row(dl, words.occupancy, pct(m.occupancy));
  row(dl, words.lines, m.lines_per_agent.toFixed(2));
  const why = document.createElement("p"); why.className = "why";
  why.textContent = `${words.pacer}: ${zh ? m.hold_back_zh : m.hold_back_en}`;
  why.dataset.holdBack = m.hold_back;
  const buttons = document.createElement("div"); buttons.className = "buttons";
  for (const action of ["start", "pause", "stop"]) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = words[action];
    b.dataset.action = action;
    b.addEventListener("click", async () => {
      b.disabled = true;
      try { await post(`/floor/campaigns/${encodeURIComponent(m.campaign)}/${action}`); }
      finally { b.disabled = false; }
    });
    buttons.append(b);
  }
  node.dataset.dialling = m.dialling ? "yes" : "no";
  node.append(h, dl, why, buttons);
}

function tick() {
  const now = Date.now();
  for (const { node, since } of agents.values()) {
    const s = (now - since) / 1000;
    node.querySelector(".time").textContent = elapsed(since);
    node.classList.toggle("long", s > (LONG[node.dataset.state] ?? Infinity));
  }
}

const monitorForm = document.getElementById("monitor-form");
if (monitorForm) {
  const status = document.getElementById("mon-status");
  const phone = document.getElementById("mon-phone");
  phone.value = localStorage.getItem("floor-phone") ?? "";
  monitorForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(monitorForm).entries());
    localStorage.setItem("floor-phone", body.phone);
    status.replaceChildren();
    try {
      const session = await post("/floor/monitor", body);
      status.textContent = `${session.mode} ${session.agent} · ${session.id}`;
      const stop = document.createElement("button");
      stop.type = "button";
      stop.textContent = words.stop;
      stop.id = "mon-stop";
      stop.addEventListener("click", async () => {
        await post(`/floor/monitor/${session.id}/stop`);
        status.replaceChildren();
      });
      status.append(" ", stop);
    } catch (err) {
      status.textContent = err.message;
    }
  });
}

setInterval(tick, 1000);
live("floor", { floor_agent: onAgent, floor_campaign: onCampaign });
