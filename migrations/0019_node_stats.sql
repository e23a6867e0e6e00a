-- What a node execution's model calls cost (NodeEffectAnswered with token
-- counts): {llm_call_count, input_token_count, output_token_count}, or NULL.
ALTER TABLE rm_node_executions ADD COLUMN stats jsonb;
