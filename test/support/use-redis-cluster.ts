/**
 * Runs before each test file of the `e2e-cluster` project, in that file's own environment: the
 * file's Stack, CLIs and Redis clients all use the project's Redis Cluster.
 */
const clusterUrl = process.env.KF_TEST_REDIS_CLUSTER_URL;
if (!clusterUrl) throw new Error('KF_TEST_REDIS_CLUSTER_URL is not set (test/support/cluster-global-setup.ts starts the cluster)');
process.env.KF_TEST_REDIS_URL = clusterUrl;
