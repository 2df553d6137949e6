DROP TABLE removed_agents;
