DROP TABLE schema_versions;
DROP TABLE schema_subjects;
