// The shapes of the server's structured results (server/ccapi_suno_mcp/views.py and tools/), as the player reads
// them, and the one function that turns any linked tool's result into task states.

export interface ClipView {
  clip_id: string;
  title?: string | null;
  state?: string | null;
  final: boolean;
  duration_seconds?: number | null;
  tags?: string | null;
  audio_url?: string | null;
  image_url?: string | null;
  lyrics?: string | null;
}

/** A task as the status tools show it (`TaskView`) or as an action tool submits it (`SubmittedTask`). */
export interface TaskState {
  task_id: string | null;
  action: string;
  tool?: string | null;
  status: string;
  done: boolean;
  progress_percent?: number | null;
  title?: string | null;
  fail_reason?: string | null;
  clips?: ClipView[];
  result?: Record<string, unknown> | null;
  parent_task_id?: string | null;
  parent_clip_id?: string | null;
  reused_existing?: boolean;
  note?: string;
}

export interface DownloadResult {
  path: string;
  size: number;
  kind: string;
  files?: string[];
  notes?: string[];
  missing?: string[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isTask(value: unknown): value is TaskState {
  return isRecord(value) && typeof value.action === "string" && typeof value.status === "string";
}

/** The tasks in a result of suno_get_task, suno_get_tasks, suno_wait_for_tasks or an action tool. */
export function tasksOf(structured: unknown): { tasks: TaskState[]; missing: string[] } {
  if (!isRecord(structured)) {
    return { tasks: [], missing: [] };
  }
  const missing = Array.isArray(structured.missing) ? structured.missing.filter((id) => typeof id === "string") : [];
  if (Array.isArray(structured.tasks)) {
    return { tasks: structured.tasks.filter(isTask), missing };
  }
  return { tasks: isTask(structured) ? [structured] : [], missing };
}

const STATUS_TOOLS = new Set(["suno_get_task", "suno_get_tasks", "suno_wait_for_tasks"]);

/** The task ids a status tool was called with, so the player can follow them before its result comes. */
export function taskIdsOf(tool: string | undefined, args: Record<string, unknown> | undefined): string[] {
  if (!args || !tool || !STATUS_TOOLS.has(tool)) {
    return []; // an action tool's task_id is the parent of what it makes, not the task to follow
  }
  if (typeof args.task_id === "string") {
    return [args.task_id];
  }
  if (Array.isArray(args.task_ids)) {
    return args.task_ids.filter((id): id is string => typeof id === "string");
  }
  return [];
}
