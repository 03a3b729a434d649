// The song player: shows the tasks of a linked tool's result, follows the pending ones until they finish, and
// offers the next steps. Everything it learns or does goes through the host to the server's own tools, so a
// button is exactly as guarded (validation, duplicates, budgets) as the same call from the model; it never sees
// the CCAPI key, which stays in the server.

import {
  App,
  applyDocumentTheme,
  applyHostStyleVariables,
  type McpUiHostContext,
} from "@modelcontextprotocol/ext-apps";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { type ClipView, type DownloadResult, type TaskState, taskIdsOf, tasksOf } from "./views.js";

declare const __PLAYER_VERSION__: string;

const FIRST_POLL_MS = 1000;
const MAX_POLL_MS = 5000;
const POLL_GROWTH = 1.25;
const CONFIRM_MS = 8000;
const BATCH_LIMIT = 100; // suno_get_tasks takes at most 100 ids

const STATUS_WORDS: Record<string, string> = {
  WAITING: "Looking it up",
  SUBMITTING: "Submitting",
  NOT_START: "Queued",
  SUBMITTED: "Submitted",
  QUEUED: "Queued",
  IN_PROGRESS: "Generating",
  SUCCESS: "Done",
  FAILURE: "Failed",
  UNKNOWN_TASK: "Unknown to CCAPI",
};

const DERIVATIONS: Record<string, string> = {
  EXTEND: "Extension of",
  COVER: "Cover of",
  WAV: "WAV export of",
  REMASTER: "Remaster of",
  STEMS: "Stems of",
  STEMS_FULL: "All stems of",
  ADD_VOCALS: "Vocals added to",
  ADD_INSTRUMENTAL: "Instrumental added to",
  REPLACE_SECTION: "Section replaced in",
  MASHUP: "Mashup of",
  SAMPLE: "Built from a sample of",
  MIDI: "MIDI of",
  ALIGNED_LYRICS: "Aligned lyrics of",
  VIDEO: "Music video of",
  BPM: "Tempo of",
  VOX: "Vocal sample of",
  CONCAT: "Full song of",
};

// Result links a finished non-song task may hold, and the suno_download kind that saves each.
const RESULT_FILES: [key: string, kind: string, label: string][] = [
  ["wav_url", "wav", "Save WAV"],
  ["midi_url", "midi", "Save MIDI"],
  ["video_url", "video", "Save video"],
];

type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    element.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      element.append(child);
    }
  }
  return element;
}

function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return "";
  }
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

function bytes(size: number): string {
  return size >= 1_000_000 ? `${(size / 1_000_000).toFixed(1)} MB` : `${Math.max(1, Math.round(size / 1000))} kB`;
}

function textOf(result: CallToolResult): string {
  return result.content
    .map((block) => (block.type === "text" ? block.text : ""))
    .join("\n")
    .trim();
}

function quoted(text: string, limit = 120): string {
  const short = text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
  return `“${short}”`;
}

function humanName(state: TaskState): string {
  const name = (state.tool ?? "").replace(/^suno_/, "").replaceAll("_", " ") || state.action.toLowerCase();
  return name.charAt(0).toUpperCase() + name.slice(1);
}

const app = new App({ name: "ccapi-suno-player", version: __PLAYER_VERSION__ }, {}, { autoResize: true });
const list = document.getElementById("tasks") as HTMLElement;
const banner = document.getElementById("banner") as HTMLElement;
const cards = new Map<string, TaskCard>();
const clipTitles = new Map<string, string>();
const parentLookups = new Set<string>();
let placeholder: TaskCard | undefined;
let stopped = false;

function say(message: string, tone: "info" | "error" = "info"): void {
  banner.textContent = message;
  banner.dataset.tone = tone;
  banner.hidden = message === "";
}

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return app.callServerTool({ name, arguments: args });
}

/** A button that runs `action` once per click, disabled while it runs; billable ones ask for a second click. */
function actionButton(label: string, action: () => Promise<void>, billable: boolean): HTMLButtonElement {
  const text = billable ? `${label} · billable` : label;
  const button = h("button", { type: "button", class: billable ? "billable" : "" }, text);
  if (billable) {
    button.title = "Submits a new CCAPI task, which costs credits; asks for a second click first.";
  }
  let armed: number | undefined;
  const disarm = (): void => {
    window.clearTimeout(armed);
    armed = undefined;
    button.textContent = text;
    button.removeAttribute("data-armed");
  };
  button.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && armed !== undefined) {
      disarm();
    }
  });
  button.addEventListener("click", () => {
    if (billable && armed === undefined) {
      button.textContent = `Confirm ${label.toLowerCase()}: costs credits`;
      button.dataset.armed = "true";
      armed = window.setTimeout(disarm, CONFIRM_MS);
      return;
    }
    disarm();
    button.disabled = true;
    action().finally(() => {
      button.disabled = false;
    });
  });
  return button;
}

class ClipCard {
  readonly root: HTMLElement;
  private readonly cover = h("img", { class: "cover", alt: "", width: "96", height: "96", loading: "lazy" });
  private readonly title = h("h3", { class: "clip-title" });
  private readonly facts = h("p", { class: "facts" });
  private readonly audio = h("audio", { controls: "", preload: "metadata" });
  private readonly preview = h("p", { class: "note" });
  private readonly lyrics = h("pre", { class: "lyrics-text" });
  private readonly lyricsBox = h("details", { class: "lyrics" }, h("summary", {}, "Lyrics"), this.lyrics);
  private readonly actions = h("div", { class: "actions" });
  private readonly feedback = h("p", { class: "feedback", role: "status" });
  private clip: ClipView;
  private hasButtons = false;

  constructor(
    clip: ClipView,
    private readonly task: TaskCard,
  ) {
    this.clip = clip;
    this.cover.addEventListener("error", () => {
      this.cover.hidden = true;
    });
    this.root = h(
      "section",
      { class: "clip", "data-clip-id": clip.clip_id },
      this.cover,
      h("div", { class: "clip-head" }, this.title, this.facts),
      h("div", { class: "clip-body" }, this.audio, this.preview, this.lyricsBox, this.actions, this.feedback),
    );
    this.update(clip);
  }

  update(clip: ClipView): void {
    this.clip = clip;
    const name = clip.title || "Untitled clip";
    if (clip.title) {
      clipTitles.set(clip.clip_id, clip.title);
    }
    this.title.textContent = name;
    this.facts.textContent = [clip.tags, duration(clip.duration_seconds)].filter(Boolean).join(" · ");
    if (clip.image_url && this.cover.getAttribute("src") !== clip.image_url) {
      this.cover.hidden = false;
      this.cover.src = clip.image_url;
      this.cover.alt = `Cover of ${name}`;
    }
    this.cover.hidden = this.cover.hidden || !clip.image_url;
    const playable = clip.final && Boolean(clip.audio_url);
    if (playable && this.audio.getAttribute("src") !== clip.audio_url) {
      this.audio.src = clip.audio_url as string;
    }
    this.audio.hidden = !playable;
    this.audio.setAttribute("aria-label", `Play ${name}`);
    this.preview.hidden = playable;
    this.preview.textContent = "Preview streaming: the finished audio comes when the task is done.";
    this.lyrics.textContent = clip.lyrics ?? "";
    this.lyricsBox.hidden = !clip.lyrics;
    if (playable && !this.hasButtons) {
      this.actions.replaceChildren(...this.buttons());
      this.hasButtons = true;
    }
    this.actions.hidden = !playable;
  }

  private buttons(): HTMLButtonElement[] {
    const clipId = this.clip.clip_id;
    const buttons = [
      actionButton("Save audio", () => this.save({ clip_id: clipId, kind: "audio" }), false),
      actionButton("Save release", () => this.save({ clip_id: clipId, kind: "release" }), false),
      actionButton("Export WAV", () => this.task.submit("suno_export_wav", { clip_id: clipId }, this.feedback), true),
    ];
    const length = this.clip.duration_seconds;
    if (typeof length === "number" && length >= 1) {
      const from = Math.floor(length - 0.001);
      buttons.push(
        actionButton(
          `Extend from ${duration(from)}`,
          () => this.task.submit("suno_extend_music", { clip_id: clipId, continue_at: from }, this.feedback),
          true,
        ),
      );
    }
    return buttons;
  }

  private async save(args: Record<string, unknown>): Promise<void> {
    await saveFile(args, this.feedback);
  }
}

async function saveFile(args: Record<string, unknown>, feedback: HTMLElement): Promise<void> {
  feedback.textContent = "Saving…";
  try {
    const result = await call("suno_download", args);
    const saved = result.structuredContent as DownloadResult | undefined;
    feedback.textContent = result.isError || !saved ? textOf(result) : savedText(saved);
  } catch (error) {
    feedback.textContent = `The host could not reach the server: ${String(error)}`;
  }
}

/** Where the files went: the file and what came with it (a song's sidecar and .lrc), or a release's folder. */
function savedText(saved: DownloadResult): string {
  const files = saved.files ?? [];
  const fileName = (path: string): string => path.split(/[\\/]/).pop() ?? path;
  let text =
    saved.kind === "release"
      ? `Saved ${files.length} files to ${saved.path}`
      : `Saved to ${saved.path} (${bytes(saved.size)})`;
  const beside = saved.kind === "release" ? [] : files.slice(1).map(fileName);
  if (beside.length) text += `, with ${beside.join(" and ")} beside it`;
  text += ".";
  if (saved.missing?.length) text += ` Not made yet: ${saved.missing.join("; ")}.`;
  for (const note of saved.notes ?? []) text += ` Note: ${note}.`;
  return text;
}

class TaskCard {
  readonly root: HTMLElement;
  private readonly heading = h("h2", { class: "task-title" });
  private readonly statusText = h("span", { class: "status-text" });
  private readonly progress = h("progress", { max: "100" });
  private readonly derived = h("p", { class: "derived" });
  private readonly clipsBox = h("div", { class: "clips" });
  private readonly resultBox = h("div", { class: "result" });
  private readonly feedback = h("p", { class: "feedback", role: "status" });
  private readonly clips = new Map<string, ClipCard>();
  private resultShown = false;
  state: TaskState;

  constructor(
    state: TaskState,
    private readonly origin?: string,
  ) {
    this.state = state;
    this.root = h(
      "article",
      { class: "task" },
      this.heading,
      h("p", { class: "status" }, this.statusText, this.progress),
      this.derived,
      this.clipsBox,
      this.resultBox,
      this.feedback,
    );
    this.update(state);
  }

  get pending(): boolean {
    return !this.state.done && this.state.task_id !== null && this.state.status !== "UNKNOWN_TASK";
  }

  update(state: TaskState): void {
    // An action tool's answer has no clips or progress: keep what a status call already showed.
    this.state = { ...this.state, ...state, clips: state.clips ?? this.state.clips };
    const { task_id, status, done } = this.state;
    this.root.dataset.taskId = task_id ?? "";
    this.root.dataset.status = status;
    this.root.dataset.progress = done ? "100" : String(this.state.progress_percent ?? "");
    this.heading.textContent = this.state.title || humanName(this.state);
    const word = STATUS_WORDS[status] ?? status;
    const percent = this.state.progress_percent;
    if (done) {
      this.statusText.textContent =
        status === "FAILURE" ? `${word}: ${this.state.fail_reason ?? "no reason given"}` : word;
    } else {
      this.statusText.textContent = percent === null || percent === undefined ? `${word}…` : `${word} · ${percent}%`;
    }
    this.progress.hidden = done;
    if (percent === null || percent === undefined) {
      this.progress.removeAttribute("value");
    } else {
      this.progress.value = percent;
    }
    this.progress.setAttribute("aria-label", `Progress of ${this.heading.textContent}`);
    for (const clip of this.state.clips ?? []) {
      const known = this.clips.get(clip.clip_id);
      if (known) {
        known.update(clip);
      } else {
        const card = new ClipCard(clip, this);
        this.clips.set(clip.clip_id, card);
        this.clipsBox.append(card.root);
      }
    }
    if (done && status === "SUCCESS" && !this.resultShown) {
      this.showResult();
    }
    this.showDerivation();
    if (this.state.note && this.state.reused_existing) {
      this.feedback.textContent = this.state.note;
    }
  }

  showDerivation(): void {
    const { parent_clip_id, parent_task_id, action, status } = this.state;
    this.derived.hidden = status === "WAITING" || status === "SUBMITTING"; // nothing known yet
    if (parent_clip_id) {
      const title = clipTitles.get(parent_clip_id);
      const verb = DERIVATIONS[action] ?? "Made from";
      this.derived.textContent = `${verb} ${title ? quoted(title) : "clip"} (${parent_clip_id})`;
      if (!title && parent_task_id) {
        lookUpParent(parent_task_id);
      }
    } else if (parent_task_id) {
      this.derived.textContent = `Made from task ${parent_task_id}`;
    } else {
      this.derived.textContent = this.origin ? `New, from ${this.origin}` : "New: not derived from another clip";
    }
  }

  markUnknown(): void {
    this.update({ ...this.state, status: "UNKNOWN_TASK", done: true });
    this.statusText.textContent = "CCAPI does not know this task for this key.";
  }

  /** Submit a follow-up through the host and follow the task it makes. */
  async submit(tool: string, args: Record<string, unknown>, feedback: HTMLElement): Promise<void> {
    feedback.textContent = "Submitting…";
    try {
      const result = await call(tool, args);
      const [task] = tasksOf(result.structuredContent).tasks;
      if (result.isError || !task) {
        feedback.textContent = textOf(result);
        return;
      }
      feedback.textContent = task.reused_existing
        ? `Already submitted as ${task.task_id}: following it below (nothing billed again).`
        : `Submitted ${task.task_id}: following it below.`;
      show(task);
      follow(true);
    } catch (error) {
      feedback.textContent = `The host could not reach the server: ${String(error)}`;
    }
  }

  private showResult(): void {
    const result = this.state.result ?? {};
    const parts: HTMLElement[] = [];
    for (const [key, kind, label] of RESULT_FILES) {
      if (typeof result[key] === "string" && this.state.task_id) {
        const args = { task_id: this.state.task_id, kind };
        parts.push(actionButton(label, () => saveFile(args, this.feedback), false));
      }
    }
    const facts = Object.entries(result).filter(
      ([key, value]) => !key.endsWith("_url") && (typeof value === "string" || typeof value === "number"),
    );
    if (facts.length) {
      const items = facts.flatMap(([key, value]) => [h("dt", {}, key.replaceAll("_", " ")), h("dd", {}, String(value))]);
      parts.unshift(h("dl", {}, ...items));
    }
    if (parts.length) {
      this.resultBox.replaceChildren(h("div", { class: "actions" }, ...parts));
    }
    this.resultShown = true;
  }
}

function lookUpParent(taskId: string): void {
  if (parentLookups.has(taskId)) {
    return;
  }
  parentLookups.add(taskId);
  call("suno_get_task", { task_id: taskId })
    .then((result) => {
      for (const task of tasksOf(result.structuredContent).tasks) {
        for (const clip of task.clips ?? []) {
          if (clip.title) {
            clipTitles.set(clip.clip_id, clip.title);
          }
        }
      }
      for (const card of cards.values()) {
        card.showDerivation();
      }
    })
    .catch(() => undefined); // the line keeps the clip id; nothing else depends on the title
}

/** Show a task: update its card, or add one (taking over the "submitting" placeholder if there is one). */
function show(task: TaskState, origin?: string): void {
  const id = task.task_id ?? `unknown-${cards.size}`;
  const known = cards.get(id);
  if (known) {
    known.update(task);
    return;
  }
  const card = new TaskCard(task, origin);
  cards.set(id, card);
  if (placeholder) {
    placeholder.root.replaceWith(card.root);
    placeholder = undefined;
  } else {
    list.append(card.root);
  }
}

// Polling: the pending tasks in one suno_get_tasks call, soon at first and then less often, until all are done.
let delay = FIRST_POLL_MS;
let timer: number | undefined;
let polling = false;

function pendingIds(): string[] {
  return [...cards.values()].filter((card) => card.pending).map((card) => card.state.task_id as string);
}

function follow(restart = false): void {
  if (restart) {
    delay = FIRST_POLL_MS;
  }
  if (stopped || polling || timer !== undefined || pendingIds().length === 0) {
    return;
  }
  timer = window.setTimeout(poll, delay);
  delay = Math.min(MAX_POLL_MS, delay * POLL_GROWTH);
}

async function poll(): Promise<void> {
  timer = undefined;
  polling = true;
  try {
    const ids = pendingIds().slice(0, BATCH_LIMIT);
    const result = await call("suno_get_tasks", { task_ids: ids });
    if (result.isError) {
      say(textOf(result), "error");
    } else {
      const { tasks, missing } = tasksOf(result.structuredContent);
      tasks.forEach((task) => show(task));
      missing.forEach((id) => cards.get(id)?.markUnknown());
      say("");
    }
  } catch (error) {
    say(`Could not reach the server through the host (${String(error)}); trying again.`, "error");
  } finally {
    polling = false;
    follow();
  }
}

function originOf(args: Record<string, unknown> | undefined): string | undefined {
  if (!args) {
    return undefined;
  }
  if (typeof args.description === "string") {
    return `the description ${quoted(args.description)}`;
  }
  if (typeof args.lyrics === "string") {
    return "your lyrics";
  }
  if (typeof args.prompt === "string") {
    return quoted(args.prompt);
  }
  return typeof args.tags === "string" ? `the styles ${quoted(args.tags)}` : undefined;
}

function applyContext(context: McpUiHostContext | undefined): void {
  if (context?.theme) {
    applyDocumentTheme(context.theme);
  }
  if (context?.styles?.variables) {
    applyHostStyleVariables(context.styles.variables);
  }
}

let toolArguments: Record<string, unknown> | undefined;

app.ontoolinput = ({ arguments: args }) => {
  toolArguments = args;
  const tool = app.getHostContext()?.toolInfo?.tool.name;
  const ids = taskIdsOf(tool, args);
  for (const id of ids) {
    show({ task_id: id, action: "", status: "WAITING", done: false, title: id });
  }
  if (ids.length) {
    follow(true);
  } else if (tool && !cards.size) {
    placeholder = new TaskCard({ task_id: null, action: "", tool, status: "SUBMITTING", done: false });
    list.append(placeholder.root);
    say("Submitting…");
  }
};

app.ontoolresult = (result) => {
  if (result.isError) {
    placeholder?.root.remove();
    placeholder = undefined;
    say(textOf(result) || "The call failed.", "error");
    return;
  }
  const { tasks, missing } = tasksOf(result.structuredContent);
  const origin = tasks.length === 1 && tasks[0]?.reused_existing !== undefined ? originOf(toolArguments) : undefined;
  tasks.forEach((task) => show(task, origin));
  missing.forEach((id) => cards.get(id)?.markUnknown());
  say(tasks.length ? "" : "This result has no tasks to show.");
  follow(true);
};

app.ontoolcancelled = ({ reason }) => {
  say(`The call was cancelled${reason ? `: ${reason}` : ""}.`, "error");
};

app.onhostcontextchanged = (context) => applyContext(context);

app.onteardown = async () => {
  stopped = true;
  window.clearTimeout(timer);
  return {};
};

say("Waiting for the result…");
await app.connect();
applyContext(app.getHostContext());
