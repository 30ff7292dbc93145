-- 015-overlay-devices.sql: a move whose two temporary overlays per disk are
-- qcow2 images on block devices a provisioner made for the job (move
-- --overlay-provisioner): the chunk they start at and grow by, in bytes,
-- so that a resume grows them the same way.  0 for overlays that are files
-- (every job before 015).  Which devices they are is in provisioned_device
-- (job_id, path = the disk's src_overlay or dst_overlay).

ALTER TABLE job ADD COLUMN overlay_chunk INTEGER NOT NULL DEFAULT 0;
