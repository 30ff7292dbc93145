-- 004-shared-images.sql: a disk's chain can stop above a shared image.
--
-- disk.kept is the first image of the chain the job leaves in place because
-- another domain or image uses it (with its format and that user); the moved
-- copies point at it.  disk.flat: the chain is converted into one image at the
-- destination (--flatten); kept then names the image below the old active one.

ALTER TABLE disk ADD COLUMN kept TEXT;
ALTER TABLE disk ADD COLUMN kept_format TEXT;
ALTER TABLE disk ADD COLUMN kept_user TEXT;
ALTER TABLE disk ADD COLUMN flat INTEGER NOT NULL DEFAULT 0;
