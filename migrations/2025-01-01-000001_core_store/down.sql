DROP TABLE cluster_samples;
DROP TABLE node_modules;
DROP TABLE nodes;
DROP TABLE run_events;
DROP TABLE runs;
