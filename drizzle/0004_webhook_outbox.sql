-- The webhook outbox (issue 21). Every event is written by this trigger, in the transaction of the
-- status change that causes it, together with one delivery row and one graphile-worker job per
-- endpoint that wants it: a change that rolls back leaves no event, a committed change always has
-- its event and its job, whatever the process does after the commit, and no code path can forget.
--
-- The delivery job (task `deliver_webhook`, src/db/jobs.ts) is one per (endpoint, upload): payload
-- {endpointId, uploadId}, job key and queue `webhook:<endpoint>:<upload>`. It sends that upload's
-- pending deliveries to the endpoint in event order; the queue keeps two jobs of the same
-- (endpoint, upload) from running at once, so one file's events arrive in order.
CREATE OR REPLACE FUNCTION webhook_enqueue(p_endpoint uuid, p_upload text, p_max_attempts int) RETURNS void AS $$
BEGIN
  PERFORM graphile_worker.add_job(
    identifier := 'deliver_webhook',
    payload := json_build_object('endpointId', p_endpoint, 'uploadId', p_upload),
    queue_name := 'webhook:' || p_endpoint || ':' || p_upload,
    max_attempts := p_max_attempts,
    job_key := 'webhook:' || p_endpoint || ':' || p_upload,
    -- A job waiting out a backoff keeps its time: a new event does not hammer a failing receiver.
    job_key_mode := 'preserve_run_at'
  );
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION webhook_outbox() RETURNS trigger AS $$
DECLARE
  v_types text[] := '{}';
  v_type text;
  v_blob_sha text;
  v_event uuid;
  v_endpoint record;
BEGIN
  -- Partial uploads (tus concatenation) are chunks of a file, not files.
  IF coalesce(NEW.upload_concat, '') = 'partial' THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    v_types := ARRAY['upload.created'];
    v_blob_sha := NEW.blob_sha256;
  ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
    -- A deletion drops the blob reference in the same update: the snapshot keeps the old blob.
    v_blob_sha := coalesce(NEW.blob_sha256, OLD.blob_sha256);
  ELSE
    RETURN NEW;
  END IF;
  -- An upload created already complete (concatenation final, direct-to-bucket) also completes.
  IF TG_OP = 'UPDATE' OR NEW.status <> 'uploading' THEN
    v_type := CASE NEW.status
      WHEN 'processing' THEN 'upload.completed'
      WHEN 'ready' THEN 'file.ready'
      WHEN 'rejected' THEN 'file.rejected'
      WHEN 'infected' THEN 'file.infected'
      WHEN 'failed' THEN 'file.failed'
      WHEN 'deleted' THEN 'file.deleted'
      WHEN 'expired' THEN 'file.expired'
    END;
    IF v_type IS NOT NULL THEN
      v_types := v_types || v_type;
    END IF;
  END IF;

  FOREACH v_type IN ARRAY v_types LOOP
    -- No endpoint wants it: no event (a server without webhooks writes nothing).
    CONTINUE WHEN NOT EXISTS (
      SELECT 1 FROM webhook_endpoints e WHERE e.enabled AND (e.events IS NULL OR v_type = ANY (e.events)));
    INSERT INTO webhook_events (type, upload_id, owner_id, snapshot)
    VALUES (
      v_type, NEW.id, NEW.owner_id,
      jsonb_build_object(
        'upload', to_jsonb(NEW),
        'blob', (SELECT to_jsonb(b) FROM blobs b WHERE b.sha256 = v_blob_sha)))
    RETURNING id INTO v_event;
    FOR v_endpoint IN
      SELECT e.id, e.max_attempts FROM webhook_endpoints e
      WHERE e.enabled AND (e.events IS NULL OR v_type = ANY (e.events))
    LOOP
      INSERT INTO webhook_deliveries (event_id, endpoint_id, upload_id) VALUES (v_event, v_endpoint.id, NEW.id);
      PERFORM webhook_enqueue(v_endpoint.id, NEW.id, v_endpoint.max_attempts);
    END LOOP;
  END LOOP;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER uploads_webhook_outbox
  AFTER INSERT OR UPDATE OF status ON uploads
  FOR EACH ROW EXECUTE FUNCTION webhook_outbox();
