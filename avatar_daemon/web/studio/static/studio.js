// The studio: a client of the daemon's public HTTP API, nothing more. No build step, no library.
// Text from the server is always set as text (never as HTML): titles and scripts come from strangers.
"use strict";

const state = { csrf: null, me: null, formats: [], speech: null, avatar: null, watching: null, nextVideos: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

class ApiFailure extends Error {
  constructor(status, message, field) { super(message); this.status = status; this.field = field; }
}

// Every call goes through here: the session cookie rides along, and a change carries the CSRF token.
async function api(method, path, body) {
  const headers = {};
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (e) {
    throw new ApiFailure(0, "the daemon cannot be reached; is it running?");
  }
  const json = (res.headers.get("Content-Type") || "").includes("json") ? await res.json() : null;
  if (res.status === 401 && state.me && !path.startsWith("/session")) {
    state.me = state.csrf = null;  // the session ended (expired, or its token was revoked): sign in again
    $("who").hidden = $("nav").hidden = true;
    show("signin");
  }
  if (!res.ok) throw new ApiFailure(res.status, (json && json.error) || `${res.status} ${res.statusText}`, json && json.field);
  return json;
}

function flash(message, error = false) {
  const f = $("flash");
  f.textContent = message;
  f.className = error ? "error" : "";
  delete f.dataset.queued;
}

// The banner is at the top; the button that failed may be a phone's length below it.
function failed(e) {
  flash(e.message, true);
  $("flash").scrollIntoView({ block: "nearest" });
}

// ---- the spoken-length estimate: the server's formula with the server's numbers (GET /formats) ----

function estimateSeconds(text, voiceSpeed) {
  const words = text.split(/\s+/).filter(Boolean).length;
  const pauses = (text.match(/\n\n/g) || []).length * state.speech.paragraph_pause_seconds;
  return Number((words / (state.speech.words_per_second * voiceSpeed) + pauses).toFixed(1));
}

function formatNamed(name) { return state.formats.find((f) => f.name === name) || state.formats[0]; }

function showCount(text, formatName, speedOverride, out) {
  const fmt = formatNamed(formatName);
  const speed = speedOverride || fmt.voice_speed;
  const seconds = text.trim() ? estimateSeconds(text, speed) : 0;
  out.textContent = `${text.length.toLocaleString("en")} characters · about ${seconds} s spoken of ${fmt.max_seconds} s (${fmt.label})`;
  out.dataset.seconds = seconds;
  out.classList.toggle("over", seconds > fmt.max_seconds || text.length > state.scriptMax);
}

// ---- signing in ----

async function signIn(token) {
  state.me = await api("POST", "/session", { token });
  state.csrf = state.me.csrf_token;
}

async function restore() {
  try {
    state.me = await api("GET", "/session");
    state.csrf = state.me.csrf_token;
    return true;
  } catch (e) {
    return false;
  }
}

async function signedIn() {
  $("who-name").textContent = `${state.me.user || state.me.name || ""} · ${state.me.workspace || "all workspaces"} · ${state.me.tier}`;
  $("who").hidden = false;
  $("nav").hidden = false;
  const [formats, templates] = await Promise.all([api("GET", "/formats"), api("GET", "/templates")]);
  state.formats = formats.formats;
  state.speech = formats.speech;
  state.scriptMax = formats.script_max_chars;
  for (const select of [$("format"), $("research-format")]) {
    select.replaceChildren(...state.formats.map((f) => el("option", { value: f.name, text: `${f.label} · up to ${f.max_seconds} s` })));
    select.value = formats.default_formats[0];
  }
  $("template").replaceChildren(el("option", { value: "", text: "The daemon's default" }),
    ...templates.templates.map((t) => el("option", { value: t.id, text: t.name + (t.has_logo ? " (brand logo)" : "") })));
  route();
}

// ---- pages ----

const views = ["signin", "make", "research", "watch", "videos", "campaigns", "analytics"];

function show(name) {
  for (const v of views) $("view-" + v).hidden = v !== name;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#" + name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function route() {
  if (!state.me) { show("signin"); return; }
  let [page, arg] = location.hash.replace(/^#/, "").split("/");
  if (page === "watch" && !arg) page = "videos";  // a player needs a video: the list is where one is picked
  // what the last page said is not about this one; only "Video N queued." follows its video here
  if (!(page === "watch" && $("flash").dataset.queued === arg)) flash("");
  const open = { make: openMake, research: openResearch, watch: () => openWatch(arg), videos: () => openVideos(),
                 campaigns: openCampaigns, analytics: openAnalytics }[page] || openMake;
  if (page !== "watch" && state.watching) { state.watching.close(); state.watching = null; }
  show(open === openMake ? "make" : page);
  open().catch(failed);
}

// ---- make a video ----

async function openMake() {
  const kind = $("avatar-type").value;  // the server filters, by the same rule as GET /avatars?avatar_type=
  const { avatars } = await api("GET", kind ? `/avatars?avatar_type=${encodeURIComponent(kind)}` : "/avatars");
  const box = $("avatars");
  box.replaceChildren(...avatars.map((a) => avatarCard(a)));
  $("avatars-none").hidden = avatars.length > 0;
  if (!avatars.some((a) => a.id === state.avatar) && avatars.length) state.avatar = avatars[0].id;
  markAvatar();
  updateCount();
}

function avatarCard(a) {
  const video = el("video", { muted: true, loop: true, playsinline: true, preload: "none", src: a.preview_video_url, "aria-hidden": "true" });
  video.muted = true;
  // The local renderer draws each still the first time it is asked (seconds apiece, one after
  // another): until it arrives the card says so, rather than showing an empty grey box.
  const note = el("span", { class: "note", "aria-hidden": "true", text: "Drawing the preview…" });
  const media = el("div", { class: "media", "data-state": "drawing" }, note);
  const still = el("img", { alt: "", loading: "lazy",
                            onload: () => { media.dataset.state = "drawn"; },
                            onerror: () => { media.dataset.state = "failed"; note.textContent = "No preview"; } });
  still.src = a.preview_image_url;  // after the handlers: a cached still may load at once
  media.append(still, video);
  const card = el("button", { type: "button", class: "avatar", role: "radio", "aria-checked": "false", "data-id": a.id,
                               "aria-label": `${a.name}${a.avatar_type === "talking_photo" ? " (talking photo)" : ""}: ${a.gender}, ${a.age_range}, ${a.style}` },
    media,
    el("strong", { text: a.name }), el("small", { text: `${a.gender} · ${a.age_range}` }), el("small", { text: a.style }),
    el("span", { class: "badge", text: a.tier }),
    ...(a.avatar_type === "talking_photo" ? [el("span", { class: "badge photo", text: "📷 talking photo" })] : []));
  const play = () => { card.classList.add("moving"); video.play().catch(() => {}); };
  const stop = () => { card.classList.remove("moving"); video.pause(); };
  card.addEventListener("mouseenter", play);
  card.addEventListener("mouseleave", stop);
  card.addEventListener("focus", play);
  card.addEventListener("blur", stop);
  card.addEventListener("click", () => { state.avatar = a.id; markAvatar(); play(); });
  card.addEventListener("keydown", (ev) => {
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[ev.key];
    if (!step) return;
    ev.preventDefault();
    const cards = [...document.querySelectorAll(".avatar")];
    const next = cards[(cards.indexOf(card) + step + cards.length) % cards.length];
    next.focus();
    next.click();
  });
  return card;
}

function markAvatar() {
  for (const c of document.querySelectorAll(".avatar")) {
    const on = c.dataset.id === state.avatar;
    c.setAttribute("aria-checked", on ? "true" : "false");
    c.tabIndex = on ? 0 : -1;
  }
}

function updateCount() {
  if (!state.speech) return;
  const speed = Number($("speed").value);
  $("speed-out").textContent = speed.toFixed(2) + "×";
  showCount($("script").value, $("format").value, speed, $("script-count"));
}

function backgroundChoice() {
  const kind = $("bg-type").value;
  $("bg-colours").hidden = !["color", "gradient"].includes(kind);
  $("bg-2-box").hidden = kind !== "gradient";
  $("bg-upload-box").hidden = kind !== "upload";
  $("bg-url-box").hidden = kind !== "url";
}

async function upload(input, what) {
  const file = input.files[0];
  if (!file) return null;
  const form = new FormData();
  form.append("file", file);
  flash(`Uploading ${what}…`);
  const asset = await api("POST", "/assets", form);
  return asset;
}

async function makeVideo(ev) {
  ev.preventDefault();
  const button = $("make-submit");
  button.disabled = true;
  try {
    const body = { script_title: $("title").value, script_content: $("script").value, avatar_profile_id: state.avatar,
                   format: $("format").value, voice_speed: Number($("speed").value), enable_captions: $("captions").checked };
    if ($("template").value) body.template_id = $("template").value;
    const kind = $("bg-type").value;
    if (kind === "color") body.background = { type: "color", value: $("bg-1").value };
    if (kind === "gradient") body.background = { type: "gradient", value: $("bg-1").value, value2: $("bg-2").value };
    if (kind === "url") body.background = { type: $("bg-url-kind").value, url: $("bg-url").value };
    if (kind === "upload") {
      const asset = await upload($("bg-file"), "the background");
      if (asset) body.background = { type: asset.kind === "video" ? "video" : "image", asset_id: asset.asset_id };
    }
    const narration = await upload($("narration"), "the narration");
    if (narration) body.narration_asset_id = narration.asset_id;
    const photo = await upload($("photo"), "the photo");
    if (photo) body.photo_asset_id = photo.asset_id;
    const logo = await upload($("logo"), "the logo");
    if (logo) body.brand_logo_asset_id = logo.asset_id;
    const { videos } = await api("POST", "/videos", body);
    flash(`Video ${videos[0].id} queued.`);
    $("flash").dataset.queued = videos[0].id;  // said until the video moves on (progress replaces it)
    location.hash = "#watch/" + videos[0].id;
  } catch (e) {
    failed(e);
    // the field is marked for the next keystroke, but the reason stays in view
    if (e.field) { const input = { script_content: "script", script_title: "title", format: "format" }[e.field]; if (input) $(input).focus({ preventScroll: true }); }
  } finally {
    button.disabled = false;
  }
}

// ---- from research ----

// A plain script (a .txt drop, or a video made on "Make a video") is stored as research with no
// insights: there is nothing to read or pick from, so it is not listed here; its video is under Videos.
async function openResearch() {
  const { research } = await api("GET", "/research?limit=20&with_insights=true");
  $("research-list").replaceChildren(...research.map((r) => el("li", {},
    el("strong", { text: r.title }), el("p", { class: "hint", text: `${r.source} · ${r.insights} insight${r.insights === 1 ? "" : "s"} · about ${r.estimated_seconds} s` }),
    el("button", { type: "button", class: "quiet", "data-research": r.id, text: "Read and edit", onclick: () => pickResearch(r.id).catch(failed) }))));
  if (!research.length) $("research-list").append(el("li", { text: "No research yet: drop a file in the inbox or let a campaign fetch some." }));
  $("research-detail").hidden = true;
}

async function pickResearch(id) {
  const r = await api("GET", "/research/" + id);
  state.research = r;
  $("research-title").textContent = r.title;
  $("research-meta").textContent = `${r.source} · ${r.topic} · ${when(r.created_at)}`;
  $("research-insights").replaceChildren(...r.insights.map((i) => el("li", {},
    el("span", { text: i.text }), " ", el("span", { class: "badge", text: i.score === null ? "no score" : `score ${i.score.toLocaleString("en")}` }))));
  const box = $("research-script");
  box.value = r.script.text;
  $("research-detail").hidden = false;
  researchCount();
  // read from its first line, with the research above it in view, not from wherever the caret lands
  box.setSelectionRange(0, 0);
  box.scrollTop = 0;
  $("research-detail").scrollIntoView({ block: "start" });
  box.focus({ preventScroll: true });
}

function researchCount() { showCount($("research-script").value, $("research-format").value, null, $("research-count")); }

async function makeFromResearch(ev) {
  ev.preventDefault();
  const r = state.research;
  const text = $("research-script").value;
  const format = $("research-format").value;
  try {
    const { videos } = text === r.script.text
      ? await api("POST", "/videos/from-research", { research_job_id: r.id, format })
      // an edited narration keeps the research's page text: its insights, links and hashtags
      : await api("POST", "/videos", { script_title: r.script.title || r.title, script_content: text, format,
                                       description: r.script.description || undefined, hashtags: r.script.hashtags });
    location.hash = "#watch/" + videos[0].id;
  } catch (e) { failed(e); }
}

// ---- watch it ----

async function openWatch(id) {
  const video = await api("GET", "/videos/" + id);
  $("watch-title").textContent = `${video.title} · ${video.format} · ${video.avatar_profile_id}`;
  $("watch-done").hidden = true;
  $("share-box").hidden = true;
  $("player").dataset.id = "";
  $("publications").replaceChildren();
  progress(video);
  if (!["failed", "timeout", "cancelled"].includes(video.status)) follow(video.id);  // a finished one: its posts
}

const finalStates = ["completed", "failed", "timeout", "cancelled"];
// A state as people read it; waiting_remote: submitted to a remote renderer (HeyGen), which is working on it.
const stateLabel = (s) => ({ waiting_remote: "rendering remotely" })[s] || s;

function progress(v) {
  const percent = v.status === "completed" ? 100 : Math.round(v.percent || 0);
  $("watch-progress").value = percent;
  $("watch-progress").textContent = percent + "%";
  const said = v.error || (v.message !== v.status ? v.message : null);  // not "cancelled · 5% · cancelled"
  $("watch-status").textContent = `${stateLabel(v.status)} · ${percent}%` + (said ? ` · ${said}` : "");
  $("watch-status").dataset.status = v.status;
  // an ended video that did not finish: here, where its reason is read, is where it is tried again
  const retry = $("watch-retry");
  retry.hidden = !["failed", "timeout", "cancelled"].includes(v.status);
  retry.onclick = () => {
    retry.disabled = true;
    api("POST", `/videos/${v.id}/retry`).then(() => openWatch(v.id)).catch(failed).finally(() => { retry.disabled = false; });
  };
  // "Video 7 queued." is stale once video 7 renders or ends: the banner follows it, then goes
  const banner = $("flash");
  if (v.status !== "queued" && banner.dataset.queued === String(v.id)) {
    if (finalStates.includes(v.status)) flash(v.status === "completed" ? `Video ${v.id} is ready.` : `Video ${v.id} ${v.status}.`);
    else banner.textContent = "";  // rendering: the status line below says how far; the banner waits for the end
  }
  if (v.status === "completed") finished(v.id).catch(failed);
}

// Live status over the WebSocket, authenticated by a single-use ticket (a browser cannot set headers on it).
async function follow(id) {
  const { ticket } = await api("POST", "/ws-tickets");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // ?publications=1: it stays open once the video is done, with its posts to platforms
  const ws = new WebSocket(`${scheme}//${location.host}/videos/${id}/status-ws?ticket=${encodeURIComponent(ticket)}&publications=1`);
  if (state.watching) state.watching.close();
  state.watching = ws;
  ws.onmessage = (m) => {
    const data = JSON.parse(m.data);
    if (data.type === "publications") data.publications.forEach(showPublication);
    else if (data.type === "publication") showPublication(data.publication);
    else progress(data);
  };
  ws.onerror = () => flash("The live status connection failed; reload to see the latest state.", true);
}

// The files' addresses are the ones the video's own answer gives; the session cookie goes with them.
async function finished(id) {
  const player = $("player");
  if (player.dataset.id === String(id)) return;
  player.dataset.id = id;
  const v = await api("GET", "/videos/" + id);
  player.poster = v.thumbnail_url || "";
  player.src = v.download_url;
  // Off until chosen: the captions are usually burnt into the picture already.
  player.replaceChildren(...(v.vtt_url ? [el("track", { kind: "captions", srclang: "en", label: "Captions", src: v.vtt_url })] : []));
  // the player's ranges count as a view; only this link counts a download (?download=1)
  const saved = v.download_url && `${v.download_url}?download=1`;
  for (const [link, url, ext] of [["dl-mp4", saved, "mp4"], ["dl-srt", v.srt_url, "srt"], ["dl-vtt", v.vtt_url, "vtt"]]) {
    $(link).href = url || "";
    $(link).download = `video-${id}.${ext}`;
    $(link).parentElement.hidden = !url;
  }
  $("share").onclick = () => share(id).catch(failed);
  pageText(v);
  $("watch-done").hidden = false;
  await publishChoices(id);
}

// ---- publishing: the accounts the daemon offers, and each post's state as it moves ----

async function publishChoices(id) {
  const { platforms } = await api("GET", "/publishing");
  const choices = Object.entries(platforms).flatMap(([platform, accounts]) => accounts.map((account, i) => {
    const box = el("input", { type: "checkbox", id: `pub-${platform}-${account}`, "data-platform": platform, "data-account": account, checked: i === 0 && Object.keys(platforms).length === 1 });
    return el("div", {}, box, el("label", { for: box.id, text: `${platform} · ${account}` }));
  }));
  $("publish-targets").replaceChildren(el("legend", { text: "Post it to" }), ...choices);
  $("publish-none").hidden = choices.length > 0;
  $("publish-form").hidden = !choices.length;
  $("publish-form").onsubmit = (ev) => { ev.preventDefault(); publish(id).catch(failed); };
  const { publications } = await api("GET", `/videos/${id}/publications`);
  publications.forEach(showPublication);
}

async function publish(id) {
  const picked = [...document.querySelectorAll("#publish-targets input:checked")];
  if (!picked.length) { flash("Pick at least one account to post to.", true); return; }
  const button = $("publish");
  button.disabled = true;  // one click, one request; asking again would answer the same posts anyway
  try {
    const { publications } = await api("POST", `/videos/${id}/publish`, {
      platforms: [...new Set(picked.map((b) => b.dataset.platform))], accounts: picked.map((b) => b.dataset.account),
      privacy: $("publish-privacy").value, made_for_kids: $("publish-kids").checked });
    publications.forEach(showPublication);
    flash(`Publishing video ${id} to ${publications.map((p) => p.platform).join(", ")}.`);
  } finally {
    button.disabled = false;
  }
}

const POST_LABEL = { pending: "queued", uploading: "uploading", processing: "processing", published: "published", failed: "failed" };

function showPublication(p) {
  if (String(p.job_id) !== $("player").dataset.id && $("player").dataset.id) return;  // another video's
  const old = document.querySelector(`[data-publication="${p.id}"]`);
  // a late progress tick never turns an ended post back into an upload
  if (old && ["published", "failed"].includes(old.dataset.state) && !["published", "failed"].includes(p.state)) return;
  const percent = p.state === "uploading" && p.percent ? ` ${Math.round(p.percent)}%` : "";
  const waiting = p.not_before && !["published", "failed"].includes(p.state) ? ` · waiting until ${when(p.not_before)}` : "";
  const item = el("li", { "data-publication": p.id, "data-state": p.state },
    el("strong", { text: `${p.platform} · ${p.account}` }), " ", el("span", { class: "badge", text: (POST_LABEL[p.state] || p.state) + percent }),
    waiting ? el("span", { class: "hint", text: waiting }) : null,
    p.url ? el("a", { href: p.url, target: "_blank", rel: "noopener", text: " the post" }) : null,
    p.error ? el("span", { class: "hint", text: ` · ${p.error}` }) : null);
  if (old) old.replaceWith(item); else $("publications").append(item);
}

// What publishing posts beside the video, ready to paste into another site's upload form.
function pageText(v) {
  $("vt-title").value = v.title || "";
  $("vt-description").value = v.description || "";
  $("vt-hashtags").value = (v.hashtags || []).join(" ");
  // a typed script has a title only: no empty boxes with buttons that copy nothing
  $("vt-description-box").hidden = !$("vt-description").value;
  $("vt-hashtags-box").hidden = !$("vt-hashtags").value;
  const notes = v.script_notes || [];
  $("vt-notes").replaceChildren(...notes.map((n) => el("li", {}, n)));
  $("vt-notes-box").hidden = !notes.length;
}

// The clipboard API needs a secure context (https or loopback); elsewhere the old copy command still works.
async function copyField(button) {
  const field = $(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    if (!document.execCommand("copy")) throw new Error("this browser would not copy; select the text and copy it");
  }
  const label = button.textContent;
  button.textContent = "Copied";
  button.dataset.copied = "true";
  setTimeout(() => { button.textContent = label; delete button.dataset.copied; }, 1500);
}

async function share(id) {
  const link = await api("POST", `/videos/${id}/share`);
  $("share-url").value = new URL(link.page_url || link.url, location.href).href;
  $("share-expiry").textContent = new Date(link.expires_at).toLocaleString();
  $("share-box").hidden = false;
  $("share-url").select();
}

// ---- videos ----

async function openVideos(before) {
  const status = $("videos-status").value;
  const query = new URLSearchParams({ limit: "12" });
  if (status) query.set("status", status);
  if (before) query.set("before", before);
  const page = await api("GET", "/videos?" + query);
  const items = page.videos.map(videoCard);
  if (before) $("videos-list").append(...items); else $("videos-list").replaceChildren(...items);
  // a new user drops a file in the inbox, then looks here: say why its video is not listed
  const ownerless = state.me.admin ? "" : " Inbox and campaign videos belong to no workspace (unless the request names one): only an admin token lists them.";
  if (!page.videos.length && !before) $("videos-list").append(el("li", { "data-empty": "", text: "No videos here yet." + ownerless }));
  state.nextVideos = page.next && page.videos.length ? page.videos[page.videos.length - 1].id : null;
  $("videos-more").hidden = !state.nextVideos;
}

function videoCard(v) {
  const actions = el("div", { class: "actions" }, el("a", { href: "#watch/" + v.id, text: "Watch" }));
  if (["failed", "timeout", "cancelled"].includes(v.status))
    actions.append(el("button", { type: "button", class: "quiet", text: "Retry",
      onclick: () => api("POST", `/videos/${v.id}/retry`).then(() => openVideos()).catch(failed) }));
  if (["queued", "submitting", "rendering", "waiting_remote"].includes(v.status))
    actions.append(el("button", { type: "button", class: "quiet", text: "Cancel",
      onclick: () => api("DELETE", `/videos/${v.id}`).then(() => openVideos()).catch(failed) }));
  return el("li", { "data-video": v.id },
    v.thumbnail_url ? el("img", { src: v.thumbnail_url, alt: "", loading: "lazy" }) : null,
    el("strong", { text: v.title }),
    el("p", {}, el("span", { class: "badge " + v.status, text: stateLabel(v.status) }), ` ${v.format} · #${v.id} · ${when(v.created_at)}`),
    v.error ? el("p", { class: "hint", text: v.error }) : null, actions);
}

// ---- campaigns ----

async function openCampaigns() {
  const { campaigns } = await api("GET", "/campaigns");
  const manage = state.me.campaigns || state.me.admin;
  $("campaign-new").hidden = !manage;
  $("campaigns-list").replaceChildren(...campaigns.map((c) => el("li", { "data-campaign": c.name },
    el("strong", { text: c.name }), " ", el("span", { class: "badge", "data-state": c.paused ? "paused" : c.active ? "running" : "inactive", text: c.paused ? "paused" : c.active ? "running" : "inactive" }),
    el("p", { class: "hint", text: c.schedule }),
    el("p", { "data-field": "next", text: `Next: ${nextRun(c)} · Last: ${when(c.last_run_at)} · ${c.videos} videos` }),
    c.problems.length ? el("p", { class: "hint", text: c.problems.join("; ") }) : null,
    el("div", { class: "actions" },
      // Pause only what the scheduler would run; an inactive one is switched on in its file (Edit)
      manage && (c.paused || c.active) ? el("button", { type: "button", class: "quiet", "data-action": "pause", text: c.paused ? "Resume" : "Pause",
        onclick: () => api("PATCH", "/campaigns/" + c.name, { paused: !c.paused }).then(() => { flash(`${c.name} ${c.paused ? "resumed" : "paused"}.`); return openCampaigns(); }).catch(failed) }) : null,
      manage ? el("button", { type: "button", class: "quiet", "data-action": "run", text: "Run now",
        onclick: (ev) => runNow(c.name, ev.currentTarget).catch(failed) }) : null,
      c.last_run_at ? el("button", { type: "button", class: "quiet", "data-action": "report", text: "Last run", onclick: () => lastRun(c.name).catch(failed) }) : null,
      manage ? el("button", { type: "button", class: "quiet", "data-action": "edit", text: "Edit", onclick: () => editCampaign(c.name).catch(failed) }) : null))));
  if (!campaigns.length) $("campaigns-list").append(el("li", { text: "No campaigns: add one below or put a YAML file in config/campaigns/." }));
}

// A run may fetch research live from several sources, which can take half a minute when one is
// slow or unreachable: say so, and take one click as one run.
async function runNow(name, button) {
  button.disabled = true;
  flash(`Running ${name}: gathering research (a live fetch can take a while)…`);
  try {
    const run = await api("POST", `/campaigns/${name}/run`);
    flash(`${name} ran: ${run.job_ids.length} video(s) queued.`);
    report(run);
    await openCampaigns();
  } finally {
    button.disabled = false;
  }
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : "never"; }

// The store keeps a next slot for every campaign, but the scheduler skips paused and inactive ones.
function nextRun(c) {
  if (!c.active) return "none (active: false in its file)";
  if (c.paused) return "none while paused";
  return when(c.next_run_at);
}

function report(run) {
  $("report-message").textContent = run.message || "No message.";
  $("report-considered").replaceChildren(...(run.considered || []).map((c) => el("li", { text: describeConsidered(c) })));
  $("campaign-report").hidden = false;
}

// One line per research the run looked at (selection.Candidate.summary): what, and the verdict on it.
function describeConsidered(c) {
  const what = c.title || c.source || "research";
  const figures = c.insights === undefined ? "" : ` (${c.kept}/${c.insights} insights kept, score ${c.score})`;
  return `${what}${figures}: ${c.verdict || "no verdict"}`;
}

async function lastRun(name) {
  const c = await api("GET", "/campaigns/" + name);
  if (!c.runs.length) { report({ message: `${name} has not run yet.`, considered: [] }); return; }
  report(c.runs[0]);
}

async function editCampaign(name) {
  const c = name ? (await api("GET", "/campaigns/" + name)).campaign : { name: "", sources: [{ source: "hackernews" }], schedule: { every: "daily", at: "09:00" }, formats: ["tiktok"] };
  const s = c.schedule || {};
  $("c-name").value = c.name;
  $("c-name").readOnly = Boolean(name);
  $("c-description").value = c.description || "";
  $("c-active").checked = c.active !== false;
  $("c-max").value = c.max_videos_per_day ?? 1;
  $("c-every").value = s.cron ? "cron" : s.every || "daily";
  $("c-at").value = s.at || "09:00";
  $("c-day").value = s.day || "monday";
  $("c-cron").value = s.cron || "";
  scheduleChoice();
  $("c-tz").value = s.timezone || "UTC";
  $("c-formats").value = (c.formats || ["tiktok"]).join(", ");
  const rest = { ...c };
  for (const k of ["name", "description", "active", "max_videos_per_day", "schedule", "formats"]) delete rest[k];
  $("c-sources").value = JSON.stringify(rest, null, 2);
  $("campaign-form-h").textContent = name ? `Edit ${name}` : "New campaign";
  $("campaign-form").hidden = false;
  $("c-name").focus();
}

// Only the fields the chosen kind of schedule reads: a daily run has no day, a cron line no time.
function scheduleChoice() {
  const every = $("c-every").value;
  $("c-at-box").hidden = every === "cron";
  $("c-day-box").hidden = !["weekly", "biweekly"].includes(every);
  $("c-cron-box").hidden = every !== "cron";
  $("c-cron").required = every === "cron";
}

async function saveCampaign(ev) {
  ev.preventDefault();
  let rest;
  try { rest = JSON.parse($("c-sources").value || "{}"); } catch (e) { flash(`Sources and the rest: not JSON (${e.message})`, true); $("c-sources").focus(); return; }
  const every = $("c-every").value;
  const schedule = every === "cron" ? { cron: $("c-cron").value, timezone: $("c-tz").value }
    : { every, at: $("c-at").value, timezone: $("c-tz").value, ...(every === "daily" ? {} : { day: $("c-day").value }) };
  const body = { ...rest, name: $("c-name").value, description: $("c-description").value, active: $("c-active").checked,
                 max_videos_per_day: Number($("c-max").value), schedule,
                 formats: $("c-formats").value.split(",").map((f) => f.trim()).filter(Boolean) };
  try {
    await api("POST", "/campaigns", body);
    flash(`Saved ${body.name}.`);
    $("campaign-form").hidden = true;
    await openCampaigns();
  } catch (e) { failed(e); }
}

// ---- analytics: small SVG bar charts, with the same numbers in a table for screen readers ----

// views: plays here, and each platform's own count of its posts' views (fetched on a schedule)
const EVENTS = [["view", "#1e3a8a"], ["download", "#059669"], ["share", "#d97706"], ["like", "#db2777"], ["comment", "#7c3aed"]];

async function openAnalytics() {
  const a = await api("GET", "/analytics");
  chart($("chart-platform"), a.by_platform, "Platform");
  chart($("chart-day"), a.by_day, "Day");
}

function chart(box, rows, keyName) {
  const NS = "http://www.w3.org/2000/svg";
  const svgEl = (tag, attrs) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
  if (!rows.length) { box.replaceChildren(el("p", { class: "hint", text: "No events yet." })); return; }
  const max = Math.max(1, ...rows.flatMap((r) => EVENTS.map(([e]) => r[e] || 0)));
  const group = 24 + EVENTS.length * 18, bar = 18, height = 140, top = 16, bottom = 28, width = Math.max(240, rows.length * group + 40);
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height + top + bottom}`, role: "img", "aria-label": `${keyName}: views, downloads, shares, likes and comments` });
  svg.style.maxWidth = `${width * 1.5}px`;  // drawn to scale: a chart of two bars is not stretched across the page
  svg.append(svgEl("line", { x1: 30, x2: width, y1: top + height, y2: top + height, stroke: "#94a3b8" }));
  rows.forEach((r, i) => {
    const x0 = 40 + i * group;
    EVENTS.forEach(([event, colour], j) => {
      const value = r[event] || 0;
      const h = Math.round((value / max) * height);
      const rect = svgEl("rect", { x: x0 + j * bar, y: top + height - h, width: bar - 3, height: h, fill: colour, "data-key": String(r.key), "data-event": event, "data-value": value });
      const title = svgEl("title", {}); title.textContent = `${r.key}: ${value} ${event}s`; rect.append(title);
      svg.append(rect);
      if (value) { const t = svgEl("text", { x: x0 + j * bar + (bar - 3) / 2, y: top + height - h - 3, "text-anchor": "middle", "font-size": 11 }); t.textContent = value; svg.append(t); }
    });
    const label = svgEl("text", { x: x0 + (bar * EVENTS.length) / 2, y: top + height + 16, "text-anchor": "middle", "font-size": 12 });
    label.textContent = String(r.key).slice(0, 10);
    svg.append(label);
  });
  const legend = el("div", { class: "legend" }, ...EVENTS.map(([e, c]) => { const s = el("span", { text: e + "s" }); s.style.setProperty("--c", c); return s; }));
  const table = el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: keyName }), ...EVENTS.map(([e]) => el("th", { text: e + "s" })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, el("th", { text: String(r.key) }), ...EVENTS.map(([e]) => el("td", { text: String(r[e] || 0) }))))));
  box.replaceChildren(legend, svg, el("details", {}, el("summary", { text: "The numbers" }), table));
}

// ---- wiring ----

document.addEventListener("DOMContentLoaded", async () => {
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await signIn($("token").value.trim());
      $("token").value = "";
      flash("");
      await signedIn();
    } catch (e) { failed(e); $("token").focus(); }
  });
  $("sign-out").addEventListener("click", async () => {
    try { await api("DELETE", "/session"); } catch (e) { /* signed out either way */ }
    location.reload();  // a fresh page: nothing the last person saw stays behind
  });
  $("make-form").addEventListener("submit", makeVideo);
  for (const id of ["script", "format", "speed"]) $(id).addEventListener("input", updateCount);
  $("bg-type").addEventListener("change", backgroundChoice);
  $("avatar-type").addEventListener("change", () => openMake().catch(failed));
  $("research-form").addEventListener("submit", makeFromResearch);
  $("research-script").addEventListener("input", researchCount);
  $("research-format").addEventListener("input", researchCount);
  $("videos-status").addEventListener("change", () => openVideos().catch(failed));
  $("videos-more").addEventListener("click", () => openVideos(state.nextVideos).catch(failed));
  $("campaign-new").addEventListener("click", () => editCampaign(null).catch(failed));
  $("campaign-form").addEventListener("submit", saveCampaign);
  $("c-every").addEventListener("change", scheduleChoice);
  $("campaign-cancel").addEventListener("click", () => { $("campaign-form").hidden = true; });
  for (const b of document.querySelectorAll("[data-copy]")) b.addEventListener("click", () => copyField(b).catch(failed));
  window.addEventListener("hashchange", route);
  if (await restore()) await signedIn().catch(failed); else show("signin");
  document.body.dataset.ready = "true";
});
