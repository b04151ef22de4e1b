import type { Migration } from "./migration.js";

/** Remove a tag as soon as no variable carries it any more. */
export const v4OrphanTagTrigger: Migration = {
  version: 4,
  name: "v4-orphan-tag-trigger",
  description: "trigger delete_orphan_tags_after_variable_tag_delete",
  up(db) {
    db.exec(`CREATE TRIGGER IF NOT EXISTS delete_orphan_tags_after_variable_tag_delete
AFTER DELETE ON variable_tags
FOR EACH ROW
BEGIN
    -- Check if the tag_id from the deleted row (OLD.tag_id)
    -- no longer exists in any other row in variable_tags
    DELETE FROM tags
    WHERE id = OLD.tag_id
    AND NOT EXISTS (
        SELECT 1 FROM variable_tags
        WHERE tag_id = OLD.tag_id
    );
END`);
  },
};
