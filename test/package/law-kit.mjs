// A user's own estimator checked with gapgrad/testing, from the installed package under plain node.
import { estimators, softmax, div } from 'gapgrad';
import { checkEstimator, unbiasedLinear } from 'gapgrad/testing';

estimators.define({
  name: 'user_st',
  description: 'straight-through, defined by a user',
  laws: ['straight-through', 'unbiased-linear'],
  build: ({ theta, tau }) => ({ surrogate: softmax(div(theta, tau), -1) }),
});
const results = await checkEstimator('user_st', { runs: 2 });
const wrong = await unbiasedLinear('user_st', { throws: false, sampleOptions: { tau: 1 } });
console.log(JSON.stringify({ laws: results.map((r) => [r.law, r.pass]), linear: wrong.pass, listed: estimators.list().some((m) => m.name === 'user_st') }));
