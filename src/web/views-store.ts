/**
 * Saved table views (visible columns and their order, sort, filters, search), per database, kept in its metameta
 * table under one key as JSON so every viewer of the database shares them; DAMNIT's own tools ignore the key.
 */
import type { RunDatabase } from "../db/run-database.js";
import { DamnitError } from "../core/errors.js";

export const VIEWS_KEY = "web_views";

export function readViews(db: RunDatabase): Record<string, unknown> {
  const text = db.settings.get("web_views");
  if (text === "") return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function saveView(db: RunDatabase, name: string, view: Record<string, unknown>): void {
  const views = readViews(db);
  views[name] = view;
  const text = JSON.stringify(views);
  if (text.length > 1_000_000) throw new DamnitError("BAD_VALUE", "saved views would exceed 1 MB; delete some first");
  db.setSetting(VIEWS_KEY, text);
}
