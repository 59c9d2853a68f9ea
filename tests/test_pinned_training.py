"""Training is pinned: for a fixed seed, the tiny BERT (no dropout anywhere)
and drop=0.0, every update mode gives the losses and predictions recorded
here.  The values were recorded with the code as it stood before the
component was split into updates.py / losses.py / loading.py / guards.py
(commit 9471b98); a change that alters them changes training.

Two loops per mode: `sgd` given to update() (steps inside update), and spaCy's
loop (update() without sgd on two sub-batches, then finish_update()).
"""
import random

import pytest

from conftest import TOY, fresh_nlp, make_tiny_bert, toy_examples, train

# Recorded at 9471b98 (see the module docstring).
EXPECTED = {'alternating/sgd': {'losses': [[1.470922, 2.054104],
                                [1.005978, 2.054946],
                                [0.8195287, 1.932599],
                                [0.7065175, 1.815604],
                                [0.6121959, 1.707574],
                                [0.5286146, 1.617928],
                                [0.4624977, 1.553509],
                                [0.4126548, 1.508586]],
                     'docs': [{'ents': [(4, 5, 'STORE')],
                               'cats': {'add_to_cart': 0.267156,
                                        'product_search': 0.228539,
                                        'store_lookup': 0.651798},
                               'tag_probs': [0.837453, 0.660784, 0.524266, 0.707119, 0.44829, 0.821884]},
                              {'ents': [(1, 3, 'PRODUCT')],
                               'cats': {'add_to_cart': 0.426835,
                                        'product_search': 0.218222,
                                        'store_lookup': 0.581636},
                               'tag_probs': [0.911382, 0.674676, 0.649131, 0.818233, 0.724394, 0.888246]},
                              {'ents': [(1, 3, 'PRODUCT')],
                               'cats': {'add_to_cart': 0.208005,
                                        'product_search': 0.390727,
                                        'store_lookup': 0.564465},
                               'tag_probs': [0.89507, 0.529044, 0.789327]}]},
 'alternating/accumulate': {'losses': [[2.942252, 4.109208],
                                       [2.018811, 4.111775],
                                       [1.6472, 3.864457],
                                       [1.416899, 3.627583],
                                       [1.223191, 3.410468],
                                       [1.0529, 3.231912],
                                       [0.918689, 3.103865],
                                       [0.8163046, 3.013072]],
                            'docs': [{'ents': [(4, 5, 'STORE')],
                                      'cats': {'add_to_cart': 0.265827,
                                               'product_search': 0.226126,
                                               'store_lookup': 0.651338},
                                      'tag_probs': [0.840905,
                                                    0.657508,
                                                    0.513449,
                                                    0.704356,
                                                    0.440053,
                                                    0.823589]},
                                     {'ents': [(1, 3, 'PRODUCT')],
                                      'cats': {'add_to_cart': 0.425297,
                                               'product_search': 0.216664,
                                               'store_lookup': 0.581839},
                                      'tag_probs': [0.913047,
                                                    0.678317,
                                                    0.652272,
                                                    0.815964,
                                                    0.735519,
                                                    0.88978]},
                                     {'ents': [(1, 3, 'PRODUCT')],
                                      'cats': {'add_to_cart': 0.207744,
                                               'product_search': 0.390294,
                                               'store_lookup': 0.562034},
                                      'tag_probs': [0.898858, 0.541528, 0.792656]}]},
 'alternating_separate/sgd': {'losses': [[1.470922, 2.054104],
                                         [1.021746, 2.063605],
                                         [0.7853307, 2.058369],
                                         [0.6433097, 2.044731],
                                         [0.5123705, 2.029183],
                                         [0.3926891, 2.017018],
                                         [0.3020796, 2.013633],
                                         [0.2417706, 2.020209]],
                              'docs': [{'ents': [(4, 5, 'STORE')],
                                        'cats': {'add_to_cart': 0.442566,
                                                 'product_search': 0.362225,
                                                 'store_lookup': 0.397829},
                                        'tag_probs': [0.922816,
                                                      0.70908,
                                                      0.75903,
                                                      0.812924,
                                                      0.653015,
                                                      0.93197]},
                                       {'ents': [(1, 3, 'PRODUCT')],
                                        'cats': {'add_to_cart': 0.467315,
                                                 'product_search': 0.38737,
                                                 'store_lookup': 0.457857},
                                        'tag_probs': [0.93451,
                                                      0.761506,
                                                      0.802635,
                                                      0.874054,
                                                      0.815956,
                                                      0.93657]},
                                       {'ents': [(1, 3, 'PRODUCT')],
                                        'cats': {'add_to_cart': 0.432071,
                                                 'product_search': 0.448245,
                                                 'store_lookup': 0.520803},
                                        'tag_probs': [0.933865, 0.687976, 0.874071]}]},
 'alternating_separate/accumulate': {'losses': [[2.942252, 4.109208],
                                                [2.052594, 4.103187],
                                                [1.58073, 4.07187],
                                                [1.287959, 4.050482],
                                                [1.019251, 4.02642],
                                                [0.777615, 4.010409],
                                                [0.5960705, 4.012076],
                                                [0.4723063, 4.031599]],
                                     'docs': [{'ents': [(4, 5, 'STORE')],
                                               'cats': {'add_to_cart': 0.441824,
                                                        'product_search': 0.36169,
                                                        'store_lookup': 0.396751},
                                               'tag_probs': [0.927091,
                                                             0.715571,
                                                             0.759978,
                                                             0.815751,
                                                             0.651163,
                                                             0.935193]},
                                              {'ents': [(1, 3, 'PRODUCT')],
                                               'cats': {'add_to_cart': 0.469457,
                                                        'product_search': 0.387831,
                                                        'store_lookup': 0.45748},
                                               'tag_probs': [0.938181,
                                                             0.764887,
                                                             0.807025,
                                                             0.879653,
                                                             0.830483,
                                                             0.939651]},
                                              {'ents': [(1, 3, 'PRODUCT')],
                                               'cats': {'add_to_cart': 0.429383,
                                                        'product_search': 0.451942,
                                                        'store_lookup': 0.517441},
                                               'tag_probs': [0.937615, 0.702349, 0.877296]}]},
 'joint/sgd': {'losses': [[1.470922, 2.054104],
                          [1.087175, 1.869656],
                          [0.8773376, 1.719801],
                          [0.7571454, 1.601722],
                          [0.6614705, 1.52059],
                          [0.5690883, 1.460423],
                          [0.4826853, 1.397812],
                          [0.407973, 1.326945]],
               'docs': [{'ents': [(4, 5, 'STORE')],
                         'cats': {'add_to_cart': 0.232412,
                                  'product_search': 0.187904,
                                  'store_lookup': 0.622491},
                         'tag_probs': [0.867898, 0.754995, 0.621349, 0.767764, 0.450784, 0.825198]},
                        {'ents': [(1, 3, 'PRODUCT')],
                         'cats': {'add_to_cart': 0.507745,
                                  'product_search': 0.188734,
                                  'store_lookup': 0.508043},
                         'tag_probs': [0.903793, 0.668816, 0.637964, 0.795433, 0.77562, 0.889409]},
                        {'ents': [(1, 3, 'PRODUCT')],
                         'cats': {'add_to_cart': 0.17356,
                                  'product_search': 0.443584,
                                  'store_lookup': 0.495098},
                         'tag_probs': [0.870457, 0.522205, 0.773929]}]},
 'joint/accumulate': {'losses': [[2.942252, 4.109208],
                                 [2.176971, 3.73734],
                                 [1.757139, 3.433496],
                                 [1.511783, 3.196988],
                                 [1.315846, 3.035683],
                                 [1.127603, 2.914922],
                                 [0.9524472, 2.786909],
                                 [0.8011874, 2.641911]],
                      'docs': [{'ents': [(4, 5, 'STORE')],
                                'cats': {'add_to_cart': 0.232328,
                                         'product_search': 0.185702,
                                         'store_lookup': 0.620021},
                                'tag_probs': [0.871992, 0.755326, 0.609886, 0.763459, 0.445272, 0.829602]},
                               {'ents': [(1, 3, 'PRODUCT')],
                                'cats': {'add_to_cart': 0.509483,
                                         'product_search': 0.187425,
                                         'store_lookup': 0.507098},
                                'tag_probs': [0.906026, 0.66853, 0.647206, 0.79239, 0.789332, 0.89146]},
                               {'ents': [(1, 3, 'PRODUCT')],
                                'cats': {'add_to_cart': 0.175896,
                                         'product_search': 0.444275,
                                         'store_lookup': 0.490574},
                                'tag_probs': [0.874365, 0.53174, 0.777577]}]},
 'joint_uncertainty/sgd': {'losses': [[1.470922, 0.6047426],
                                      [0.7726868, 1.520702],
                                      [0.5883558, 1.22599],
                                      [0.5544587, 0.9789702],
                                      [0.5640308, 0.8405988],
                                      [0.5871231, 0.7549513],
                                      [0.6132435, 0.7037901],
                                      [0.6416725, 0.6871672]],
                           'docs': [{'ents': [(4, 5, 'STORE')],
                                     'cats': {'add_to_cart': 0.210532,
                                              'product_search': 0.163692,
                                              'store_lookup': 0.625776},
                                     'tag_probs': [0.876175,
                                                   0.761762,
                                                   0.607553,
                                                   0.768166,
                                                   0.440359,
                                                   0.844642]},
                                    {'ents': [(1, 3, 'PRODUCT')],
                                     'cats': {'add_to_cart': 0.54402,
                                              'product_search': 0.109584,
                                              'store_lookup': 0.346397},
                                     'tag_probs': [0.902749,
                                                   0.624113,
                                                   0.610563,
                                                   0.807441,
                                                   0.785945,
                                                   0.891384]},
                                    {'ents': [(1, 3, 'PRODUCT')],
                                     'cats': {'add_to_cart': 0.133712,
                                              'product_search': 0.484823,
                                              'store_lookup': 0.381465},
                                     'tag_probs': [0.877469, 0.485461, 0.785552]}]},
 'joint_uncertainty/accumulate': {'losses': [[2.942252, 1.822222],
                                             [1.594889, 2.87741],
                                             [1.2025, 2.048936],
                                             [1.108928, 1.597238],
                                             [1.105053, 1.428397],
                                             [1.129405, 1.376926],
                                             [1.160478, 1.391267],
                                             [1.205637, 1.464192]],
                                  'docs': [{'ents': [(4, 5, 'STORE')],
                                            'cats': {'add_to_cart': 0.220535,
                                                     'product_search': 0.17329,
                                                     'store_lookup': 0.606174},
                                            'tag_probs': [0.881131,
                                                          0.76327,
                                                          0.59143,
                                                          0.760646,
                                                          0.445451,
                                                          0.853757]},
                                           {'ents': [(1, 3, 'PRODUCT')],
                                            'cats': {'add_to_cart': 0.570695,
                                                     'product_search': 0.11231,
                                                     'store_lookup': 0.316995},
                                            'tag_probs': [0.901959,
                                                          0.627385,
                                                          0.639539,
                                                          0.797555,
                                                          0.808319,
                                                          0.896109]},
                                           {'ents': [(1, 3, 'PRODUCT')],
                                            'cats': {'add_to_cart': 0.121453,
                                                     'product_search': 0.531828,
                                                     'store_lookup': 0.346719},
                                            'tag_probs': [0.862892, 0.485777, 0.786832]}]},
 'ner_only/sgd': {'losses': [[1.470922, 0.0],
                             [1.020663, 0.0],
                             [0.7839965, 0.0],
                             [0.6423484, 0.0],
                             [0.5115041, 0.0],
                             [0.3911514, 0.0],
                             [0.2995658, 0.0],
                             [0.2386612, 0.0]],
                  'docs': [{'ents': [(4, 5, 'STORE')],
                            'cats': {},
                            'tag_probs': [0.92262, 0.722812, 0.764414, 0.819616, 0.650302, 0.931211]},
                           {'ents': [(1, 3, 'PRODUCT')],
                            'cats': {},
                            'tag_probs': [0.933712, 0.760337, 0.812867, 0.870668, 0.826139, 0.937482]},
                           {'ents': [(1, 3, 'PRODUCT')],
                            'cats': {},
                            'tag_probs': [0.932665, 0.69591, 0.873445]}]},
 'ner_only/accumulate': {'losses': [[2.942252, 0.0],
                                    [2.047958, 0.0],
                                    [1.575883, 0.0],
                                    [1.284208, 0.0],
                                    [1.015209, 0.0],
                                    [0.7724152, 0.0],
                                    [0.5898596, 0.0],
                                    [0.4657344, 0.0]],
                         'docs': [{'ents': [(4, 5, 'STORE')],
                                   'cats': {},
                                   'tag_probs': [0.926812, 0.728182, 0.765451, 0.824401, 0.649275, 0.934224]},
                                  {'ents': [(1, 3, 'PRODUCT')],
                                   'cats': {},
                                   'tag_probs': [0.937514, 0.765457, 0.817067, 0.877061, 0.839972, 0.94042]},
                                  {'ents': [(1, 3, 'PRODUCT')],
                                   'cats': {},
                                   'tag_probs': [0.936633, 0.712487, 0.876467]}]}}


CASES = {
    "alternating": dict(update_mode="alternating"),
    "alternating_separate": dict(update_mode="alternating", intent_optimizer_state="separate", intent_weight_warmup=3),
    "joint": dict(update_mode="joint"),
    "joint_uncertainty": dict(update_mode="joint", loss_balance="uncertainty", intent_loss="auto", intent_weight_warmup=2),
    "ner_only": dict(update_mode="ner_only"),
}
TEXTS = ["pickup my order at orange store", "add apple juice to my cart", "find lemon cake"]
STEPS = 8


@pytest.fixture(scope="module")
def bert_no_dropout(tmp_path_factory):
    """The conftest tiny BERT, with hidden and attention dropout 0."""
    return make_tiny_bert(
        tmp_path_factory.mktemp("tiny_bert_no_dropout"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )


def run(bert, cfg, loop):
    """Train STEPS updates; the per-update losses and the predictions on TEXTS."""
    nlp = fresh_nlp(bert, **cfg)
    exs = toy_examples(nlp)
    if loop == "sgd":
        hist = train(nlp, exs, steps=STEPS, lr=3e-3)
    else:
        from thinc.api import Adam, fix_random_seed

        fix_random_seed(0)
        random.seed(0)
        opt, hist = Adam(3e-3), []
        pipe = nlp.get_pipe("intent_ner")
        for _ in range(STEPS):
            losses = {}
            pipe.update(exs[:4], sgd=None, losses=losses)
            pipe.update(exs[4:], sgd=None, losses=losses)
            pipe.finish_update(opt)
            hist.append(losses)
    docs = [
        {
            "ents": [(e.start, e.end, e.label_) for e in doc.ents],
            "cats": dict(sorted(doc.cats.items())),
            "tag_probs": [float(x) for x in doc._.tag_probs],
        }
        for doc in nlp.pipe(TEXTS)
    ]
    return [[h["intent_ner_ner"], h["intent_ner_intent"]] for h in hist], docs


@pytest.mark.parametrize("key", list(EXPECTED))
def test_training_is_pinned(bert_no_dropout, key):
    case, loop = key.split("/")
    losses, docs = run(bert_no_dropout, CASES[case], loop)
    want = EXPECTED[key]
    assert losses == [pytest.approx(pair, rel=1e-5, abs=1e-7) for pair in want["losses"]]
    for got, exp in zip(docs, want["docs"]):
        assert got["ents"] == exp["ents"]
        assert got["cats"] == pytest.approx(exp["cats"], abs=1e-5)
        assert got["tag_probs"] == pytest.approx(exp["tag_probs"], abs=1e-5)
    assert len(docs) == len(want["docs"])


def _dropout_rates(nlp):
    import torch

    from spacy_multitask_intent.layers import torch_modules

    pipe = nlp.get_pipe("intent_ner")
    return {
        float(m.p)
        for _, module in torch_modules(pipe.model)
        for m in module.modules()
        if isinstance(m, torch.nn.Dropout)
    }


@pytest.mark.parametrize("mode", ["alternating", "joint", "ner_only"])
def test_drop_sets_the_dropout_of_encoder_and_heads(bert_no_dropout, mode):
    """`drop` ([training] dropout) is the rate of every torch Dropout of the
    update: with drop > 0 the same seed gives other losses than with drop = 0."""
    from thinc.api import Adam, fix_random_seed

    def one_update(drop):
        nlp = fresh_nlp(bert_no_dropout, update_mode=mode)
        fix_random_seed(0)
        losses = nlp.update(toy_examples(nlp), sgd=Adam(1e-3), drop=drop, losses={})
        return nlp, losses["intent_ner"]

    nlp0, loss0 = one_update(0.0)
    assert _dropout_rates(nlp0) == {0.0}
    assert one_update(0.0)[1] == pytest.approx(loss0, rel=1e-6)  # no randomness left at drop=0
    nlp5, loss5 = one_update(0.5)
    assert _dropout_rates(nlp5) == {0.5}
    assert loss5 != pytest.approx(loss0, rel=1e-3)
    # Prediction is dropout-free whatever the training rate was.
    first = nlp5(TEXTS[0]).cats
    assert nlp5(TEXTS[0]).cats == first


def test_drop_none_keeps_the_configured_rates(tiny_bert):
    nlp = fresh_nlp(tiny_bert, update_mode="joint")
    before = _dropout_rates(nlp)
    assert 0.1 in before  # the tiny BERT's own hidden/attention dropout
    nlp.get_pipe("intent_ner").update(toy_examples(nlp), drop=None, losses={})
    assert _dropout_rates(nlp) == before


def test_training_config_dropout_reaches_the_component(tiny_bert, monkeypatch):
    """spaCy's training loop passes [training] dropout as `drop`."""
    from spacy_multitask_intent.component import IntentNER

    seen = []
    original = IntentNER.update

    def spy(self, examples, *, drop=0.0, sgd=None, losses=None):
        seen.append(drop)
        return original(self, examples, drop=drop, sgd=sgd, losses=losses)

    monkeypatch.setattr(IntentNER, "update", spy)
    nlp = fresh_nlp(tiny_bert, update_mode="joint")
    nlp.update(toy_examples(nlp), drop=0.25, losses={})
    assert seen == [0.25]
    assert _dropout_rates(nlp) == {0.25}
