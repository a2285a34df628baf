# What the hub keeps of a pushed order, as GET /ordersync/orders/{source}/{reference} shows
# it: numbers sent as strings become numbers (decimals keep their exact text), "" means not
# set, *_street_full is split into street and house number (and kept), the printed nested
# items form is flattened, top-level shipping_method is kept, codes are upper-cased, the
# passthrough objects are copied unchanged. Then a full Demand document
# (t/fixtures/demand-enqueue.json).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More;
use JSON::PP ();
use File::Spec ();
use lib 't/lib';
use OSTest;

plan tests => 50;

my $ref = "norm-$$-1";
my $options = { info => 'x', '@pos_zone_id' => '', '@consignment_zone_id' => '',
                carrier => { name => 'flatrate_flatrate', type => '0000' },
                packing => { ogc => JSON::PP::true, instruction => 'fragile' },
                delivery_date_strict => JSON::PP::false, list => [ 1, 'two', undef ] };
my $custom = { option_data => [ { label => 'Color', value => 'Orange' } ] };
my $packing = { additional_labels => [ { country_of_origin => 'The Netherlands' } ] };

# written by hand: the numbers must reach the server exactly as typed here
my $body = <<"JSON";
{"status": "0", "type": "1", "flag_partial": "", "priority": "007", "cod_amount": "007.10",
 "source_id": "demo", "reference": "$ref", "customer_id": 1, "currency": "usd",
 "shipping_method": "flatrate_flatrate", "created_at": "2019-04-18 08:47:25", "delivery_at": "",
 "options": @{[ JSON::PP->new->encode($options) ]},
 "billing_firstname": "David", "billing_street_full": "450 Wallstreet", "billing_country": "de",
 "billing_phone": "", "billing_email": "",
 "shipping_firstname": "Arnold", "shipping_lastname": "S", "shipping_street_full": "Main Street 12a",
 "shipping_postcode": "74983", "shipping_city": "New York", "shipping_country": "nl",
 "shipping_phone": "", "shipping_region": "",
 "items": [[
   {"sku": "MUG-33", "weight": "", "reference": 17, "unit_price": "50.00", "is_kit": "1",
    "qty": "2", "cost": "-0.00", "allocation_type": "2",
    "custom_options": @{[ JSON::PP->new->encode($custom) ]},
    "packing": @{[ JSON::PP->new->encode($packing) ]}},
   {"sku": "MUG-34", "qty": 1.500, "unit_price": 3}
 ]]}
JSON

my $res = json_req('POST', '/orders', $body, 'demo');
is($res->code, 202, 'an order written the way the Demand example writes it: 202')
    or diag($res->content);

$res = json_req('GET', "/orders/demo/$ref", undef, 'demo');
is($res->code, 200, 'GET the order: 200');
my $raw = $res->content;
my $d = decode($res) || {};
my $o = $d->{order} || {};
my $it = $o->{items} || [];

# numbers as strings
like($raw, qr/"status":0[,}]/, 'status "0" is the integer 0');
like($raw, qr/"type":1[,}]/, 'type "1" is the integer 1');
like($raw, qr/"priority":7[,}]/, 'priority "007" is the integer 7');
like($raw, qr/"cod_amount":7\.10[,}]/, 'cod_amount "007.10" is the number 7.10 (text kept)');
like($raw, qr/"unit_price":50\.00[,}]/, 'unit_price "50.00" stays 50.00, not 50 or 50.0');
like($raw, qr/"qty":2[,}]/, 'qty "2" is the number 2');
like($raw, qr/"qty":1\.500[,}]/, 'qty 1.500 keeps its text');
like($raw, qr/"cost":0\.00[,}]/, 'cost "-0.00" loses the sign of zero');
like($raw, qr/"allocation_type":2[,}]/, 'allocation_type "2" is the integer 2');
is($o->{customer_id}, '1', 'customer_id 1 is kept as the text "1"');
like($raw, qr/"customer_id":"1"/, 'customer_id is a JSON string');
is($it->[0]{reference}, '17', 'items[].reference 17 is kept as "17"');
ok(JSON::PP::is_bool($it->[0]{is_kit}) && $it->[0]{is_kit}, 'is_kit "1" is true');

# "" is not set
ok(!exists $o->{flag_partial}, 'flag_partial "" is absent');
ok(!exists $o->{delivery_at}, 'delivery_at "" is absent');
ok(!exists $o->{shipping_phone} && !exists $o->{shipping_region},
   'shipping_phone "" and shipping_region "" are absent');
ok(!exists $o->{billing_phone} && !exists $o->{billing_email}, 'billing "" fields are absent');
ok(!exists $it->[0]{weight}, 'items[].weight "" is absent');

# street_full
is($o->{shipping_street}, 'Main Street', '"Main Street 12a": street');
is($o->{shipping_housenumber}, '12', '"Main Street 12a": house number');
is($o->{shipping_housenumber_ext}, 'a', '"Main Street 12a": extension');
is($o->{shipping_street_full}, 'Main Street 12a', 'shipping_street_full is kept');
is($o->{billing_street}, 'Wallstreet', '"450 Wallstreet": a leading number works too');
is($o->{billing_housenumber}, '450', '"450 Wallstreet": house number 450');

# items, method, codes
is(scalar @$it, 2, 'items [[a, b]] is flattened to two items');
is_deeply([ map { $_->{sku} } @$it ], [ 'MUG-33', 'MUG-34' ], 'in their order');
is($o->{shipping_method}, 'flatrate_flatrate', 'top-level shipping_method is kept');
is($o->{currency}, 'USD', 'currency "usd" is "USD"');
is($o->{shipping_country}, 'NL', 'shipping_country "nl" is "NL"');
is($o->{billing_country}, 'DE', 'billing_country "de" is "DE"');

# passthrough
is_deeply($o->{options}, $options, 'options are passed through unchanged, "@" keys included');
is_deeply($it->[0]{custom_options}, $custom, 'custom_options unchanged');
is_deeply($it->[0]{packing}, $packing, 'packing unchanged');

# explicit fields win over the split
my $ref2 = "norm-$$-2";
$res = json_req('POST', '/orders',
                order_payload(reference => $ref2, shipping_street_full => 'Other Road 99',
                              shipping_street => 'Keizersgracht', shipping_housenumber => '12'),
                'demo');
$o = (decode(json_req('GET', "/orders/demo/$ref2", undef, 'demo')) || {})->{order} || {};
ok($res->code == 202 && $o->{shipping_street} eq 'Keizersgracht'
   && $o->{shipping_housenumber} eq '12', 'explicit street and house number win over street_full');

# ---------------------------------------------------------------- a full Demand document

# t/fixtures/demand-enqueue.json: every field of the Demand payload, written the way the
# Demand document's example writes them (numbers as strings, "" for not set, shipping by
# *_street_full, top-level shipping_method); billing gives street and house number apart.
my $top = Apache::Test::vars()->{top_dir};
my $doc = JSON::PP->new->decode(
    read_file(File::Spec->catfile($top, 't', 'fixtures', 'demand-enqueue.json')));
my $payload = $doc->{payload};
# For reruns against a kept store: the document's own reference belongs to
# dropin.t; this file sends the same payload under its own reference.
my $ref3 = "000020417-norm-$$";
$payload->{reference} = $ref3;
$res = json_req('POST', '/orders', $payload, 'mage2');
is($res->code, 202, "the full Demand document's payload, with mage2's key: 202")
    or diag($res->content);
$res = json_req('GET', "/orders/mage2/$ref3", undef, 'mage2');
$raw = $res->content;
$d = decode($res) || {};
$o = $d->{order} || {};
$it = $o->{items} || [];
is($d->{sent_reference}, "M-$ref3", "sent_reference carries mage2's prefix M-");
is($o->{shipping_street}, 'Keizersgracht', 'document: shipping street "Keizersgracht"');
is($o->{shipping_housenumber} . '|' . $o->{shipping_housenumber_ext}, '221|B',
   'document: shipping house number 221, extension B (the "-" dropped)');
is(join('|', map { $o->{"billing_$_"} } qw(street housenumber housenumber_ext)),
   'Lindelaan|7|bis', 'document: billing street, house number and extension as given');
is($o->{shipping_method}, 'dhl_parcel', 'document: top-level shipping_method is kept');
ok(!exists $o->{flag_partial} && !exists $o->{shipping_phone} && !exists $o->{shipping_company},
   'document: flag_partial, shipping_phone and shipping_company "" are absent');
ok($o->{status} == 0 && $o->{priority} == -2 && $o->{type} == 0,
   'document: status "0" is 0, priority "-2" is -2, type 0');
like($raw, qr/"cod_amount":24\.95[,}]/, 'document: cod_amount 24.95');
is($o->{shipping_country}, 'NL', 'document: shipping_country "nl" is "NL"');
like($raw, qr/"unit_price":7\.90[,}]/, 'document: unit_price 7.90');
like($raw, qr/"cost":4\.10[,}]/, 'document: cost 4.10');
ok(@$it == 2 && $it->[1]{reference} eq '2' && JSON::PP::is_bool($it->[1]{is_kit})
   && $it->[1]{is_kit} && !exists $it->[1]{cost} && !exists $it->[1]{weight},
   'document: the kit item: reference 2 as "2", is_kit "1" true, cost and weight "" absent');
is_deeply($o->{options}, $payload->{options}, 'document: options unchanged, "@" keys included');
