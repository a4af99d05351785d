// The agent's screen: state and timer, screen-pop with the filled script, dispositions.
// Everything the server pushes is rendered with textContent (never as HTML).
import { post, getJson, live, elapsed, hotkeys } from "/static/app.js";

const labels = JSON.parse(document.getElementById("agent-i18n").textContent);
const lang = document.getElementById("agent").dataset.lang;
const $ = (id) => document.getElementById(id);
const form = $("dispo-form");
let stateSince = Date.now();
let current = null; // the customer on screen (screen-pop message)
let status = document.body.dataset.agentStatus || $("status").dataset.status;

function fmt(template, values) {
  return template.replace(/\{(\w+)\}/g, (_m, k) => values[k] ?? "");
}

function say(text, isError = false, node = $("message")) {
  node.textContent = text || "";
  node.classList.toggle("error", isError);
  node.classList.toggle("ok", !isError && Boolean(text));
}

async function act(url, body = {}, node = $("message")) {
  try {
    const reply = await post(url, body);
    say("", false, node);
    return reply;
  } catch (err) {
    say(err.message, true, node);
    return null;
  }
}

// ------------------------------------------------------------------ state
function showState(m) {
  status = m.status;
  const node = $("status");
  node.dataset.status = m.status;
  node.textContent = labels[m.status] || m.status;
  if (m.pause_label) node.textContent += ` · ${m.pause_label}`;
  if (m.pending) node.textContent += ` (${labels["pending_" + m.pending]})`;
  stateSince = Date.now() - m.seconds * 1000;
  $("phone").textContent = m.phone_up ? labels.phone_up : labels.phone_down;
  $("campaign").textContent = m.campaign || "—";
  $("calls").textContent = String(m.calls);
  const offline = m.status === "offline";
  $("login-form").hidden = !offline;
  $("controls").hidden = offline;
  $("dial-form").hidden = offline;
  document.body.dataset.agentStatus = m.status;
  $("save").disabled = !current;
}

// ------------------------------------------------------------------ screen-pop
function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

function showScript(parts) {
  const tabs = $("script-tabs");
  const panels = $("script-panels");
  tabs.replaceChildren();
  panels.replaceChildren();
  parts.forEach((part, i) => {
    const tab = document.createElement("button");
    tab.type = "button";
    tab.setAttribute("role", "tab");
    tab.id = `tab-${part.part}`;
    tab.setAttribute("aria-controls", `panel-${part.part}`);
    tab.textContent = lang === "zh" ? part.title_zh : part.title_en;
    const panel = document.createElement("div");
    panel.setAttribute("role", "tabpanel");
    panel.id = `panel-${part.part}`;
    panel.setAttribute("aria-labelledby", tab.id);
    panel.className = "script-text";
    panel.tabIndex = 0;
    panel.textContent = part.text;
    tab.addEventListener("click", () => selectTab(i));
    tab.addEventListener("keydown", (event) => {
      if (event.key === "ArrowRight") selectTab((i + 1) % parts.length, true);
      if (event.key === "ArrowLeft") selectTab((i - 1 + parts.length) % parts.length, true);
    });
    tabs.appendChild(tab);
    panels.appendChild(panel);
  });
  selectTab(0);
}

function selectTab(index, focus = false) {
  const tabs = [...$("script-tabs").children];
  const panels = [...$("script-panels").children];
  tabs.forEach((tab, i) => {
    tab.setAttribute("aria-selected", String(i === index));
    tab.tabIndex = i === index ? 0 : -1;
    panels[i].hidden = i !== index;
  });
  if (focus && tabs[index]) tabs[index].focus();
}

function showQuestions(questions) {
  const box = $("questions");
  box.replaceChildren();
  questions.forEach((q) => {
    const wrap = document.createElement("div");
    wrap.className = "question";
    const id = `q-${q.id}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = q.text;
    wrap.appendChild(label);
    let input;
    if (q.choices.length) {
      input = document.createElement("select");
      const blank = document.createElement("option");
      blank.value = "";
      blank.textContent = "—";
      input.appendChild(blank);
      q.choices.forEach((c) => {
        const o = document.createElement("option");
        o.value = c;
        o.textContent = c;
        input.appendChild(o);
      });
    } else {
      input = document.createElement("input");
    }
    input.id = id;
    input.dataset.question = q.id;
    wrap.appendChild(input);
    box.appendChild(wrap);
  });
  $("questionnaire").dataset.empty = questions.length ? "" : "1";
}

function showCustomer(m) {
  if (!m.attempt_id) {
    current = null;
    $("customer").hidden = true;
    $("no-customer").hidden = false;
    form.reset();
    showKind("");
    $("script-tabs").replaceChildren();
    $("script-panels").replaceChildren();
    $("questions").replaceChildren();
    $("c-history").replaceChildren();
    $("save").disabled = true;
    document.body.dataset.customer = "";
    return;
  }
  const fresh = !current || current.attempt_id !== m.attempt_id;
  current = m;
  $("no-customer").hidden = true;
  $("customer").hidden = false;
  $("c-name").textContent = m.name || "—";
  $("c-number").textContent = m.number;
  $("c-segment").textContent = m.segment || "—";
  $("c-product").textContent = m.product || "—";
  const body = $("c-history");
  body.replaceChildren();
  m.history.forEach((h) => {
    const row = document.createElement("tr");
    cell(row, h.when);
    cell(row, h.campaign);
    cell(row, h.product);
    cell(row, labels["kind_" + h.disposition] || labels["outcome_" + h.outcome] || h.outcome);
    body.appendChild(row);
  });
  $("c-no-history").hidden = m.history.length > 0;
  document.querySelector("table.history").hidden = m.history.length === 0;
  if (fresh) {
    showScript(m.script);
    showQuestions(m.questionnaire);
    const select = $("d-product");
    select.replaceChildren();
    m.products.forEach((p) => {
      const o = document.createElement("option");
      o.value = p.name;
      o.textContent = p.name;
      if (p.name === m.product) o.selected = true;
      select.appendChild(o);
    });
    showTerms();
    say("", false, $("dispo-message"));
  }
  $("save").disabled = false;
  document.body.dataset.customer = m.attempt_id;
}

function showTerms() {
  if (!current) return;
  const chosen = current.products.find((p) => p.name === $("d-product").value);
  const parts = [];
  if (chosen && chosen.price) parts.push(`${labels.price}: ${chosen.price}`);
  if (chosen && chosen.payment) parts.push(`${labels.payment}: ${chosen.payment}`);
  $("terms").textContent = parts.join(" · ");
}

// ------------------------------------------------------------------ dispositions
function showKind(kind) {
  form.querySelectorAll("[data-for]").forEach((node) => {
    node.hidden = !kind || !node.dataset.for.split(" ").includes(kind);
    if (node.id === "questionnaire" && node.dataset.empty === "1") node.hidden = true;
  });
  if (kind === "callback") proposeCallback();
}

async function proposeCallback() {
  try {
    const reply = await getJson("/agent/callback-proposal");
    if (reply.proposal) {
      if (!$("d-callback-at").value) $("d-callback-at").value = reply.proposal;
      $("proposal").textContent = fmt(labels.proposal, { time: reply.text });
    } else {
      $("proposal").textContent = reply.text || "";
    }
  } catch (err) {
    $("proposal").textContent = err.message;
  }
}

function chooseKind(kind) {
  if (!current) return;
  const radio = $(`kind-${kind}`);
  radio.checked = true;
  showKind(kind);
  radio.focus();
}

async function saveDisposition(event) {
  event.preventDefault();
  const kind = (form.querySelector('input[name="kind"]:checked') || {}).value || "";
  const body = { kind, product: $("d-product").value || null, note: $("d-note").value };
  if (kind === "order") {
    body.checklist = {};
    form.querySelectorAll("[data-check]").forEach((box) => { body.checklist[box.dataset.check] = box.checked; });
  }
  if (kind === "callback") {
    body.callback_at = $("d-callback-at").value;
    body.callback_for = (form.querySelector('input[name="callback_for"]:checked') || {}).value || "me";
  }
  if (kind === "no_decision") body.follow_up = $("d-follow-up").checked;
  body.answers = {};
  form.querySelectorAll("[data-question]").forEach((input) => {
    if (input.value) body.answers[input.dataset.question] = input.value;
  });
  const node = $("dispo-message");
  try {
    const reply = await post("/agent/disposition", body);
    const text = reply.callback_at
      ? fmt(labels.callback_saved, { time: reply.callback_at })
      : fmt(labels.saved, { kind: labels["kind_" + reply.done] || reply.done });
    say(text, false, node);
  } catch (err) {
    say(err.message, true, node);
    if (err.body && err.body.proposal) {
      $("proposal").textContent = fmt(labels.proposal, { time: err.body.proposal_text });
      $("proposal").dataset.proposal = err.body.proposal;
      const use = document.createElement("button");
      use.type = "button";
      use.id = "use-proposal";
      use.textContent = labels.use_proposal;
      use.addEventListener("click", () => {
        $("d-callback-at").value = err.body.proposal;
        use.remove();
        $("d-callback-at").focus();
      });
      $("proposal").appendChild(document.createTextNode(" "));
      $("proposal").appendChild(use);
    }
  }
}

// ------------------------------------------------------------------ the agent's own calls
function showCallbacks(m) {
  const list = $("callbacks");
  list.replaceChildren();
  m.items.forEach((cb) => {
    const item = document.createElement("li");
    item.dataset.due = cb.due_now ? "now" : "later";
    const text = document.createElement("span");
    const when = cb.due_now ? labels.due_now : fmt(labels.due, { time: cb.due });
    text.textContent = `${cb.name || "—"} ${cb.number} · ${cb.product} · ${when}`;
    item.appendChild(text);
    if (cb.due_now) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "primary";
      button.textContent = labels.call;
      button.dataset.callback = String(cb.id);
      button.addEventListener("click", async () => {
        button.disabled = true;
        say(labels.dialling);
        const reply = await act(`/agent/callbacks/${cb.id}/dial`);
        if (!reply) button.disabled = false;
      });
      item.appendChild(document.createTextNode(" "));
      item.appendChild(button);
      const grace = document.createElement("small");
      grace.className = "muted";
      grace.textContent = " " + fmt(labels.grace, { time: cb.grace_until });
      item.appendChild(grace);
    }
    list.appendChild(item);
  });
  $("no-callbacks").hidden = m.items.length > 0;
}

function showPreview(m) {
  $("preview-box").hidden = !m.preview;
  const held = m.lead && m.lead.lead_id;
  $("preview-lead").textContent = held
    ? fmt(labels.lead_held, { number: m.lead.number, segment: m.lead.segment, product: m.lead.product })
    : labels.no_lead;
  $("preview-dial").disabled = !held;
  $("preview-skip").disabled = !held;
  $("preview-next").disabled = Boolean(held);
}

$("preview-next").addEventListener("click", async () => {
  const reply = await act("/agent/preview/next");
  if (reply && !reply.found) say(labels.no_more);
});
$("preview-dial").addEventListener("click", () => act("/agent/preview/dial"));
$("preview-skip").addEventListener("click", () => act("/agent/preview/skip"));
$("dial-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say(labels.dialling);
  const reply = await act("/agent/dial", { number: $("dial-number").value });
  if (reply) $("dial-number").value = "";
});

// ------------------------------------------------------------------ wiring
$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("/agent/login", { campaign: $("campaign-select").value });
});
$("pause-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("/agent/pause", { code: $("pause-code").value });
});
$("ready").addEventListener("click", () => act("/agent/ready"));
$("hangup").addEventListener("click", () => act("/agent/hangup"));
$("logout").addEventListener("click", () => act("/agent/logout"));
$("d-product").addEventListener("change", showTerms);
form.querySelectorAll('input[name="kind"]').forEach((radio) => {
  radio.addEventListener("change", () => showKind(radio.value));
});
form.addEventListener("submit", saveDisposition);
const kinds = ["order", "refused", "callback", "do_not_call", "wrong_number", "no_decision"];
const keys = {
  F2: () => act("/agent/ready"),
  F3: () => act("/agent/pause", { code: $("pause-code").value }),
  F4: () => act("/agent/hangup"),
};
kinds.forEach((kind, i) => { keys[String(i + 1)] = () => chooseKind(kind); });
hotkeys(keys);

live("agent", {
  agent: showState,
  customer: showCustomer,
  callbacks: showCallbacks,
  preview: showPreview,
});
window.setInterval(() => { $("timer").textContent = elapsed(stateSince); }, 1000);
$("save").disabled = true;
