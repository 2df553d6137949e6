DROP TABLE relayed_verbs;
