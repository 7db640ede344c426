"""Event sources: streams now; mappings, objects, tables, queues, topics and schedules later."""
