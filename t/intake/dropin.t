# The drop-in route for shops that already speak Clougistic's Demand enqueue:
# POST /ordersync/api/v1/order/enqueue with the envelope {access_key, entity_id, payload}.
# The access_key is the source's key; the answer is Clougistic's 200 {id, reference,
# entity_id, version}. A document shaped like the Demand document's printed example, which
# is not JSON (t/fixtures/demand-enqueue-as-printed.txt), is refused (400); the same order as
# valid JSON with every Demand field (t/fixtures/demand-enqueue.json) is accepted for mage2.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use File::Spec ();
use lib 't/lib';
use OSTest;

plan tests => 30;

my $JSON = JSON::PP->new->canonical;
my $top = Apache::Test::vars()->{top_dir};
my $fixtures = File::Spec->catdir($top, 't', 'fixtures');
my $mage2 = key('mage2');

sub enqueue {
    my ($body, %h) = @_;
    $body = $JSON->encode($body) if ref $body;
    return req('POST', hub_url('/api/v1/order/enqueue'),
               ['Content-Type' => 'application/json', %h], $body);
}

# ---------------------------------------------------------------- the example as printed

# the Demand document's example prints the per-item fields as bare members after the item
# object inside "items": [[ ... ]], and indents with no-break spaces: this fixture does too
my $printed = read_file("$fixtures/demand-enqueue-as-printed.txt");
$printed =~ s/\s+\z//;
ok(length $printed > 1000 && index($printed, '"items": [[') > 0
   && index($printed, "\xc2\xa0") > 0 && $printed !~ /\n/,
   'the printed-style document: one line, nested items, no-break spaces');
ok($printed =~ s/\[the source's access key\]/$mage2/, "mage2's key put in as access_key");
my $res = enqueue($printed);
{
    my $d = problem_ok($res, 400, 'malformed-json') || {};
    ok(%$d, 'the printed-style document (not valid JSON) with a valid key: 400 malformed-json');
    # the first thing that is not JSON is a no-break space (U+00A0) used as indentation
    # inside the options' "packing" (the bare "allocation_type" members come later)
    my $at = index($printed, "\xc2\xa0");
    ok($at > 0 && defined $d->{offset} && $d->{offset} >= $at && $d->{offset} <= $at + 2,
       "the offset points at the first no-break space (byte $at)");
    is($d->{line}, 1, 'on line 1 (the document is one line)');
}
isnt($res->code, 200, 'the printed-style document is not accepted');

# ---------------------------------------------------------------- the valid document

my $doc = $JSON->decode(read_file("$fixtures/demand-enqueue.json"));
$doc->{access_key} = $mage2;
$res = enqueue($doc);
is($res->code, 200, "the valid Demand document with mage2's key as access_key: 200")
    or diag($res->content);
my $d = decode($res) || {};
like($d->{id} // '', qr/\S/, 'the answer has an id');
is($d->{reference}, '000020417', 'the reference');
is($d->{entity_id}, '[Clougistic entity ID]', 'entity_id is echoed');
is($d->{version}, 1, 'version 1');
like($res->header('Content-Type') // '', qr{^application/json}, 'a JSON answer');

$res = enqueue($doc);
is($res->code, 200, 'the same envelope again: 200');
is($res->header('Idempotent-Replayed'), 'true', 'Idempotent-Replayed: true');
is((decode($res) || {})->{id}, $d->{id}, 'the same id');

$res = json_req('GET', '/orders/mage2/000020417', undef, 'mage2');
my $o = decode($res) || {};
is($res->code, 200, 'the order can be read with GET /orders/mage2/000020417');
is($o->{sent_reference}, 'M-000020417', 'sent_reference has the M- prefix');
is($o->{origin}, 'push', 'origin push');
ok(!exists $o->{order}{access_key} && !exists $o->{order}{entity_id}
   && index($res->content, $mage2) < 0, 'neither access_key nor entity_id is stored');

# a change is a new version, still answered 200 as Clougistic does
my $ref = "dropin-$$-1";
my $env = { access_key => key('demo'), entity_id => 42,
            payload => order_payload(reference => $ref) };
$res = enqueue($env);
ok($res->code == 200 && !defined $res->header('Idempotent-Replayed'),
   "a new order through the drop-in route with demo's key: 200, not a replay");
is((decode($res) || {})->{entity_id}, 42, 'a numeric entity_id is echoed as a number');
$env->{payload}{items}[0]{qty} = 5;
$res = enqueue($env);
ok($res->code == 200 && (decode($res) || {})->{version} == 2, 'changed content: 200, version 2');

# ---------------------------------------------------------------- refusals

$res = enqueue({ entity_id => '1', payload => order_payload(reference => "dropin-$$-2") });
ok(problem_ok($res, 401, 'unauthorized'), 'no access_key: 401');
$res = enqueue({ entity_id => '1', payload => order_payload(reference => "dropin-$$-2") },
               Authorization => 'Bearer ' . key('demo'));
ok(problem_ok($res, 401, 'unauthorized'),
   'no access_key, even with a Bearer header: 401 (the envelope is what counts)');
$res = enqueue({ access_key => 'wrong', entity_id => '1',
                 payload => order_payload(reference => "dropin-$$-2") });
ok(problem_ok($res, 401, 'unauthorized'), 'a wrong access_key: 401');
$res = enqueue({ access_key => key('demo'), entity_id => '1',
                 payload => order_payload(reference => "dropin-$$-2", source_id => 'mage2') });
ok(problem_ok($res, 403, 'wrong-source'), "demo's access_key with payload.source_id mage2: 403");
$res = json_req('GET', "/orders/demo/dropin-$$-2", undef, 'demo');
is($res->code, 404, 'nothing was stored for the refused envelopes');

my $bad = order_payload(reference => "dropin-$$-3");
$bad->{items}[0]{qty} = 0;
$res = enqueue({ access_key => key('demo'), entity_id => '1', payload => $bad });
$d = problem_ok($res, 422, 'invalid-order') || {};
is(($d->{errors} || [])->[0]{path}, '$.items[0].qty',
   'an invalid payload: 422, paths relative to the payload');
$res = enqueue({ access_key => key('demo'), entity_id => '1' });
ok($res->code >= 400 && $res->code < 500, 'an envelope without payload: refused with a 4xx');

# the whole access_key counts: the key followed by an escaped NUL and more is no key
{
    my $body = $JSON->encode({ access_key => 'KEYHERE', entity_id => 1,
                               payload => order_payload(reference => "dropin-$$-nul") });
    my $k = key('demo');
    $body =~ s/"KEYHERE"/"$k\\u0000junk"/;
    my $r = enqueue($body);
    ok(problem_ok($r, 401, 'unauthorized'), 'access_key "<key>\u0000junk": 401');
}
