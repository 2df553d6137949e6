DROP TABLE deployment_batches;
