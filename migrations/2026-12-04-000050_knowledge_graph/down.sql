DROP TABLE graph_schemas;
DROP TABLE graph_relationships;
DROP TABLE graph_entities;
