/** Every schema step, in order. A new format version is one new file here plus one line in this list. */
import type { Migration } from "./migration.js";
import { v1Baseline } from "./v1-baseline.js";
import { v2Attributes } from "./v2-attributes.js";
import { v3Tags } from "./v3-tags.js";
import { v4OrphanTagTrigger } from "./v4-orphan-tag-trigger.js";

export type { Migration };

export const MIGRATIONS: readonly Migration[] = [v1Baseline, v2Attributes, v3Tags, v4OrphanTagTrigger];
