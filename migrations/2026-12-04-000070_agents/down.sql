DROP TABLE desired_modules;
DROP TABLE agents;
DROP TABLE enrolment_tokens;
