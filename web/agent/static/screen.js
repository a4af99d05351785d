// The agent's screen: state and timer pushed live, actions posted with the CSRF token.
import { post, live, elapsed, hotkeys } from "/static/app.js";

const labels = JSON.parse(document.getElementById("agent-i18n").textContent);
const $ = (id) => document.getElementById(id);
let stateSince = Date.now();

function say(text, isError = false) {
  const node = $("message");
  node.textContent = text || "";
  node.classList.toggle("error", isError);
}

async function act(url, body = {}) {
  try {
    await post(url, body);
    say("");
  } catch (err) {
    say(err.message, true);
  }
}

function showState(m) {
  const status = $("status");
  status.dataset.status = m.status;
  status.textContent = labels[m.status] || m.status;
  if (m.pause_label) status.textContent += ` · ${m.pause_label}`;
  if (m.pending) status.textContent += ` (${labels["pending_" + m.pending]})`;
  stateSince = Date.now() - m.seconds * 1000;
  $("phone").textContent = m.phone_up ? labels.phone_up : labels.phone_down;
  $("campaign").textContent = m.campaign || "—";
  $("calls").textContent = String(m.calls);
  const offline = m.status === "offline";
  $("login-form").hidden = !offline;
  $("controls").hidden = offline;
  document.body.dataset.agentStatus = m.status;
}

function tick() {
  $("timer").textContent = elapsed(stateSince);
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("/agent/login", { campaign: $("campaign-select").value });
});
$("ready").addEventListener("click", () => act("/agent/ready"));
$("pause").addEventListener("click", () => act("/agent/pause"));
$("hangup").addEventListener("click", () => act("/agent/hangup"));
$("logout").addEventListener("click", () => act("/agent/logout"));
hotkeys({
  F2: () => act("/agent/ready"),
  F3: () => act("/agent/pause"),
  F4: () => act("/agent/hangup"),
});

live("agent", { agent: showState });
window.setInterval(tick, 1000);
tick();
